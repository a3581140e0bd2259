"""Mosquitto's $SYS figures as the sink keeps them (sinks/broker_queue.py)."""

from __future__ import annotations

from schemas.mqtt_principals import BROKER_QUEUE_TOPICS, BROKER_WATCHER_ROLE
from sinks.broker_queue import BROKER_FIGURES, broker_figure


def test_each_figure_is_read_from_its_topic_and_nothing_else_is() -> None:
    assert broker_figure("$SYS/broker/store/messages/count", b"1234") == ("stored_messages", 1234)
    assert broker_figure("$SYS/broker/store/messages/bytes", b" 56 \n") == ("stored_bytes", 56)
    assert broker_figure("$SYS/broker/publish/messages/dropped", b"0") == ("dropped_messages", 0)
    assert broker_figure("$SYS/broker/uptime", b"12 seconds") is None
    assert broker_figure("$SYS/broker/store/messages/count", b"many") is None
    assert broker_figure("$SYS/broker/store/messages/count", b"-1") is None
    assert broker_figure("$SYS/broker/store/messages/count", b"\xff") is None


def test_the_sink_may_read_those_topics_of_sys_and_no_other() -> None:
    assert set(BROKER_FIGURES) == set(BROKER_QUEUE_TOPICS)
    readable = {acl.topic for acl in BROKER_WATCHER_ROLE.acls if acl.acltype == "publishClientReceive"}
    subscribable = {acl.topic for acl in BROKER_WATCHER_ROLE.acls if acl.acltype == "subscribePattern"}
    assert readable == subscribable == set(BROKER_QUEUE_TOPICS)
    assert all(acl.allow for acl in BROKER_WATCHER_ROLE.acls)
