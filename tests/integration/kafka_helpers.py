"""Reading the session's shared Kafka topics from a test: only what the test itself sent."""

from __future__ import annotations

import time

from confluent_kafka import Consumer, Message, TopicPartition


def group_at_end(bootstrap: str, group: str, topics: tuple[str, ...]) -> str:
    """A new consumer group whose committed offsets are the topics' current ends: it sees only what comes next."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        offsets = []
        for topic, meta in consumer.list_topics(timeout=30).topics.items():
            if topic in topics:
                for partition in meta.partitions:
                    _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=30)
                    offsets.append(TopicPartition(topic, partition, high))
        consumer.commit(offsets=offsets, asynchronous=False)
    finally:
        consumer.close()
    return group


def consume(bootstrap: str, group: str, topics: tuple[str, ...], count: int, timeout: float = 60) -> list[Message]:
    """The next ``count`` messages of the group (fewer only if ``timeout`` passes first)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    messages: list[Message] = []
    try:
        consumer.subscribe(list(topics))
        deadline = time.monotonic() + timeout
        while len(messages) < count and time.monotonic() < deadline:
            messages.extend(m for m in consumer.consume(count - len(messages), timeout=0.5) if m.error() is None)
    finally:
        consumer.close()
    return messages
