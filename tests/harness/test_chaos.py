"""The reliability scenarios of `manage.py chaos`, at CI size, on their own real stack: kill -9 of the
dispatcher, a send worker's child and a send bridge; provider faults; poison on every topic; Redis
restarted and PostgreSQL connections terminated mid-run; two beats, one killed. Counted, not sampled."""

import pytest

from apps.harness.chaos.runner import ChaosOptions, run
from apps.harness.chaos.scenarios import MOST_DEVICES_PER_USER, SEND_BATCH

USERS = 10_000


@pytest.fixture(scope="module")
def report(django_db_setup, django_db_blocker, broker):  # noqa: ANN001, ANN201
    from django.core.management import call_command

    with django_db_blocker.unblock():
        try:
            return run(ChaosOptions(users=USERS, timeout=240), log=print)
        finally:
            # As a transactional test leaves the database, sequences kept: the session stack's Redis still holds
            # state (claims, control) under the notification ids used so far, and a reused id would inherit it.
            call_command("flush", "--no-input", reset_sequences=False, verbosity=0)


@pytest.mark.parametrize("scenario", ["crash", "provider_faults", "poison", "dependency_restarts", "redis_data_loss",
                                      "beat"])
def test_nobody_is_missing(report, scenario):  # noqa: ANN001
    result = report["scenarios"][scenario]
    assert result["recipients"] == USERS, result
    assert not result["timed_out"], result
    assert result["missing"] == 0, result


def test_a_crash_resends_at_most_the_batch_in_flight(report):  # noqa: ANN001
    crash = report["scenarios"]["crash"]
    # The claims and the sent journal make it 0 unless the kill lands while the provider request is
    # in flight: nobody can know then whether the provider took it, and the batch is sent again.
    print("crash duplicates:", crash["duplicates"])
    assert crash["duplicates"] <= crash["duplicate_bound"] == SEND_BATCH * MOST_DEVICES_PER_USER, crash


def test_redis_losing_all_its_data_resends_at_most_the_calls_in_flight(report):  # noqa: ANN001
    from django.conf import settings

    loss = report["scenarios"]["redis_data_loss"]
    print("redis data loss:", loss)
    bound = 4 * settings.PROVIDER_CALLS_IN_FLIGHT * settings.PROVIDER_CALL_SIZE  # 4 children x their calls in flight
    assert loss["duplicates"] <= bound, loss
    assert loss["completed_after_loss_s"] < 60, loss


def test_provider_faults_end_sent_or_dead_lettered_with_a_reason(report):  # noqa: ANN001
    faults = report["scenarios"]["provider_faults"]
    assert set(faults["injected"]) >= {"5xx", "429", "reset", "slow", "unavailable"}, faults
    assert faults["dead_lettered"] > 0 and any(r.startswith("gave up after 5 attempt(s)")
                                               for r in faults["failure_reasons"]), faults
    assert faults["duplicates"] == 0


def test_every_poison_message_is_dead_lettered_once(report):  # noqa: ANN001
    poison = report["scenarios"]["poison"]
    # 72 on the topics, and the platform's own signed event for a notification that does not exist
    assert poison["poison_dead_lettered"] == poison["poison_messages"] == 73, poison
    assert poison["looped"] == 0 and poison["duplicates"] == 0
    reasons = " ".join(poison["reasons"])
    for expected in ("not valid JSON", "larger than", "not signed", "unknown notification", "required"):
        assert expected in reasons, (expected, poison["reasons"])


def test_dependency_restarts_lose_and_repeat_nothing(report):  # noqa: ANN001
    restarts = report["scenarios"]["dependency_restarts"]
    assert restarts["duplicates"] == 0, restarts


def test_a_doubled_and_restarted_beat_launches_the_occurrence_once(report):  # noqa: ANN001
    beat = report["scenarios"]["beat"]
    assert (beat["launches"], beat["notifications"], beat["duplicates"]) == (1, 1, 0), beat
