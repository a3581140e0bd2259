"""The operators' live web page (`zerocarbon view`): the territory's figures and the platform's
health on one read-only page, updated over server-sent events while someone watches.

Where each figure comes from: docs/operators-view.md.
"""
