"""A consumer group's committed offsets against the end of each partition, on a real broker."""

from __future__ import annotations

from apps.streaming.lag import GroupNotFound, end_offsets, group_lag, partitions_of


def uncommitted(group: str, topics: list[str]) -> dict[tuple[str, int], tuple[int, int]]:
    """(topic, partition) -> (committed, end) for every partition the group has not committed to its end."""
    try:
        rows = group_lag(group, topics, timeout=10)
    except GroupNotFound:  # never committed: fine only if nothing was ever published there
        ends = end_offsets(partitions_of(topics), timeout=10)
        return {key: (-1, end) for key, end in ends.items() if end != 0}
    return {(row.topic, row.partition): (row.committed, row.end) for row in rows if row.end < 0 or row.lag}
