"""Causal evidence between indicators: hypotheses, series preparation, Granger tests."""
