"""Idempotency keys over the service API, like Stripe's and Knock's: scoped per API key (or event source, or
in-process call), remembered for NOTIFY_IDEMPOTENCY_TTL_SECONDS and tied to the request they were first used
for (the same key with a different body is a 422 naming what differs), campaign occurrences in a namespace no
caller can write, and racing requests for one key making one notification."""

import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from apps.delivery import idempotency
from apps.delivery.models import EventSource, Notification, Source
from apps.delivery.requests import parse_request
from apps.delivery.service import notify, record, submit
from tests.api.test_api import api, make_key, small  # noqa: F401  (api: the fixture posting to /api/notifications)


def test_same_key_with_a_different_body_is_422_naming_the_mismatch(api, broker):  # noqa: F811
    key = f"k-{uuid.uuid4()}"
    assert api(small(), key=key).status_code == 202
    answer = api(small(title="Other", audience={"recipients": [9]}), key=key)
    assert answer.status_code == 422, answer.content
    assert answer.json()["field"] == "idempotency_key" and answer.json()["differing"] == ["audience", "title"]
    assert "audience, title differ" in answer.json()["error"]
    assert Notification.objects.filter(idempotency_key=key).count() == 1


def test_different_api_keys_with_one_idempotency_key_make_two_notifications(api, broker):  # noqa: F811
    key, other = f"k-{uuid.uuid4()}", make_key("other")
    first, second = api(small(), key=key), api(small(), token=other, key=key)
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] != second.json()["id"]
    assert api(small(), token=other, key=key).json()["id"] == second.json()["id"]


def test_an_expired_key_can_be_used_again(api, broker, settings):  # noqa: F811
    key = f"k-{uuid.uuid4()}"
    first = api(small(), key=key).json()["id"]
    held = Notification.objects.get(pk=first)
    assert held.idempotency_expires_at - timezone.now() > timedelta(seconds=settings.IDEMPOTENCY_TTL_SECONDS - 60)
    Notification.objects.filter(pk=first).update(idempotency_expires_at=timezone.now() - timedelta(seconds=1))
    again = api(small(title="A new one"), key=key)
    assert again.status_code == 202 and again.json()["id"] != first
    assert Notification.objects.get(pk=first).idempotency_released_at is not None
    assert api(small(title="A new one"), key=key).json()["id"] == again.json()["id"]


def test_no_caller_can_take_a_campaign_occurrence_key(api, broker):  # noqa: F811
    key = "campaign:1:once"
    taken = api(small(), key=key)
    assert taken.status_code == 202
    launched = notify(category="goal-alerts", audience={"recipients": [1]}, channels=["push"], title="x",
                      idempotency_key=key, source=Source.CAMPAIGN)
    assert launched.pk != taken.json()["id"] and launched.idempotency_scope == idempotency.CAMPAIGN_SCOPE
    assert launched.idempotency_expires_at is None  # occurrences are held for ever


def test_event_sources_and_in_process_calls_have_scopes_of_their_own(api, broker):  # noqa: F811
    key = f"k-{uuid.uuid4()}"
    orders, billing = (EventSource.objects.create(name=f"{name}-{key[-6:]}") for name in ("orders", "billing"))
    event = submit(parse_request({**small(), "idempotency_key": key}), Source.KAFKA, publish=False, event_source=orders)
    again = submit(parse_request({**small(), "idempotency_key": key}), Source.KAFKA, publish=False, event_source=orders)
    other = submit(parse_request({**small(), "idempotency_key": key}), Source.KAFKA, publish=False,
                   event_source=billing)
    local = notify(**{k: v for k, v in small().items()}, idempotency_key=key)
    assert event.pk == again.pk and len({event.pk, other.pk, local.pk}) == 3
    assert event.idempotency_scope == f"source:{orders.pk}" and event.event_source == orders
    assert other.idempotency_scope == f"source:{billing.pk}" and local.idempotency_scope == idempotency.IN_PROCESS_SCOPE


@pytest.mark.parametrize("expired", [False, True])
def test_racing_requests_for_one_key_make_one_notification(api, expired):  # noqa: F811
    key = f"race-{uuid.uuid4()}"
    if expired:
        old = record(parse_request(small(), idempotency_key=key), Source.KAFKA)[0]
        Notification.objects.filter(pk=old.pk).update(idempotency_expires_at=timezone.now() - timedelta(seconds=1))
    barrier, results, errors = threading.Barrier(6), [], []

    def race() -> None:
        try:
            barrier.wait()
            results.append(record(parse_request(small(), idempotency_key=key), Source.KAFKA)[0].pk)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=race) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(set(results)) == 1
    assert Notification.objects.filter(idempotency_key=key, idempotency_released_at__isnull=True).count() == 1


def test_a_key_used_again_inside_the_callers_transaction_leaves_it_usable(api, broker):  # noqa: F811
    """The first try is a bare INSERT; when the key is taken, the conflict stays inside a savepoint, so the
    caller's own transaction goes on (and the holder is answered)."""
    from django.db import transaction

    key = f"k-{uuid.uuid4()}"
    first = record(parse_request(small(), idempotency_key=key), Source.KAFKA)[0]
    with transaction.atomic():
        again, created = record(parse_request(small(), idempotency_key=key), Source.KAFKA)
        assert (again.pk, created) == (first.pk, False)
        assert Notification.objects.filter(pk=first.pk).exists()  # the transaction was not aborted
