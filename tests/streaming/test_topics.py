"""Partition choice on the topics whose consumer pauses a partition at a message that is not yet due."""

import pytest

from apps.streaming.topics import DEFERRAL_PERIOD_SECONDS, deferred_partition, retry_partition


@pytest.mark.parametrize("partitions", [50, 10, 4, 1])
def test_a_retry_partition_holds_delays_of_one_tier_so_a_short_retry_never_waits_behind_a_long_one(settings,
                                                                                                  partitions):
    settings.KAFKA_PARTITIONS = partitions
    delays: dict[int, list[float]] = {}
    for tenths in range(51, 36_001, 7):  # 5.1 s to 1 h, the delays that go through the topic
        for key in (*range(7), 10**12 + 7):
            partition = retry_partition(tenths / 10, key)
            assert 0 <= partition < partitions
            delays.setdefault(partition, []).append(tenths / 10)
    assert len(delays) == partitions  # every partition is used
    if partitions >= 10:  # one tier per partition: the longest delay is at most twice the shortest, or 1 h
        for found in delays.values():
            assert max(found) <= max(2 * min(found), 3600)
    # A 10 s retry is never behind an hour's Retry-After, however few partitions there are (one aside).
    if partitions > 1:
        assert retry_partition(10, 1) != retry_partition(3600, 1)


def test_a_deferred_partition_is_a_slot_of_due_times(settings):
    settings.KAFKA_DEFERRED_PARTITIONS = 96
    width = DEFERRAL_PERIOD_SECONDS / 96
    start = 1_800_000_000 // width * width
    assert deferred_partition(start) == deferred_partition(start + width - 1)
    assert deferred_partition(start + width) == (deferred_partition(start) + 1) % 96
