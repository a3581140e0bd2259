"""Tell a resumed session's redeliveries of messages already in Kafka from new messages.

When the connection drops, the acknowledgements of the last messages sent to Kafka may not
have reached the broker (the batch Kafka was confirming when Mosquitto restarted, or
acknowledgements written but not yet read by it). The broker then delivers those messages
again on the next connection, first, with their original packet identifiers (MQTT 5, 4.4):
forwarded again, each would reach Kafka twice (issue 19: 49 readings at a Mosquitto restart
under 2 000 readings/s).

So the bridge remembers what it received on the connection before (the last ``keep``
messages, forwarded or recognised as redeliveries: no broker has more in flight), and on a
new connection takes each message of the leading run that carries a remembered packet
identifier with the same topic and the same bytes for a redelivery: acknowledged, not
forwarded. The first message that is not one ends
the run: from then on the broker sends new messages. Pure bookkeeping, no I/O.

Only a bridge that stayed up knows what it forwarded: after a bridge restart, redeliveries
reach Kafka again, and validation drops them as duplicates (by event id, within an hour).
"""

from __future__ import annotations

import collections

from schemas.mqtt_packets import Publish


class Redeliveries:
    """What was forwarded on earlier connections, to recognise its redelivery on the next."""

    def __init__(self, keep: int) -> None:
        self._keep = keep
        self._generation = 0
        # Messages of the current connection, in batches, the oldest dropped first.
        self._forwarded: collections.deque[list[Publish]] = collections.deque()
        self._kept = 0
        # On a new connection, until its first new message: packet id -> (topic, payload).
        self._expected: dict[int, tuple[str, bytes]] = {}
        self.skipped = 0

    def new_messages(self, generation: int, messages: list[Publish]) -> list[Publish]:
        """The messages of ``messages`` (one read of connection ``generation``, in arrival
        order) to forward; the others are redeliveries of messages already forwarded.
        Everything returned is taken as forwarded, and every message of ``messages`` is
        remembered for the next connection."""
        if generation != self._generation:
            self._start_connection(generation)
        fresh = messages
        if self._expected:
            k = 0
            for message in messages:
                if self._expected.get(message.packet_id) != (message.topic, message.payload):
                    self._expected = {}  # the broker sends new messages now
                    break
                del self._expected[message.packet_id]
                k += 1
            self.skipped += k
            fresh = messages[k:]
        # A redelivery is in flight again on this connection: its acknowledgement may be lost too.
        if messages:
            self._remember(messages)
        return fresh

    def _start_connection(self, generation: int) -> None:
        self._generation = generation
        # A packet id names one message in flight at a time: the latest one forwarded with it.
        self._expected = {
            m.packet_id: (m.topic, m.payload) for batch in self._forwarded for m in batch if m.packet_id
        }
        self._forwarded.clear()
        self._kept = 0

    def _remember(self, messages: list[Publish]) -> None:
        self._forwarded.append(messages)
        self._kept += len(messages)
        while self._forwarded and self._kept - len(self._forwarded[0]) >= self._keep:
            self._kept -= len(self._forwarded.popleft())
