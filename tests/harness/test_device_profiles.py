"""Seeded device profiles (issue 22): the realistic mix of devices, their tokens' sizes and shapes,
and a fan-out that reaches every active device of it exactly once."""

import base64
import json
import re
import uuid
from collections import Counter

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from apps.audience.models import Device, Recipient
from apps.delivery.models import Delivery
from apps.delivery.service import notify
from apps.harness.benchmark import expected_devices
from apps.harness.fake_server import TokenCounter, seeded_key
from apps.harness.seeding import seed_audience, topic_profile
from tests.delivery.test_pipeline import completed, expected_counts

BASE64URL = re.compile(r"^[A-Za-z0-9_-]+$")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _check_token(platform: str, token: str) -> None:
    if platform == "fcm":
        instance, _, rest = token.partition(":")
        assert 152 <= len(token) <= 165 and len(instance) == 22 and rest.startswith("APA91b"), token
        assert BASE64URL.match(instance) and BASE64URL.match(rest), token
    elif platform == "apns":
        assert re.fullmatch(r"[0-9a-f]{64}", token), token
    else:
        assert platform == "webpush"
        subscription = json.loads(token)  # as apps/providers/webpush.py reads it
        assert subscription["endpoint"].startswith("https://") and 195 <= len(subscription["endpoint"]) <= 205
        p256dh, auth = _b64decode(subscription["keys"]["p256dh"]), _b64decode(subscription["keys"]["auth"])
        assert len(p256dh) == 65 and p256dh[0] == 4 and len(auth) == 16  # an uncompressed P-256 point


# Transactional: seed_audience loads on connections of its own, so only a flush undoes it.
@pytest.mark.django_db(transaction=True)
def test_realistic_profile_has_the_device_mix_and_token_shapes_of_a_real_audience():
    users = 4000
    result = seed_audience(users, "real-fans", devices="realistic")
    assert result.recipients_created == users and topic_profile("real-fans") == "realistic"
    recipients = Recipient.objects.filter(external_id__startswith="seedr-")
    assert recipients.count() == users
    seeded = Device.objects.filter(recipient__external_id__startswith="seedr-")
    per_user = Counter(Counter(seeded.values_list("recipient_id", flat=True)).values())
    assert sum(per_user.values()) == users  # every user has at least one device
    assert abs(per_user[1] / users - 0.75) < 0.02 and abs(per_user[2] / users - 0.20) < 0.02
    assert abs(per_user[3] / users - 0.05) < 0.01 and set(per_user) == {1, 2, 3}
    devices = list(seeded.values_list("platform", "token", "is_active"))
    platforms = Counter(platform for platform, _, _ in devices)
    assert abs(platforms["fcm"] / len(devices) - 0.60) < 0.03
    assert abs(platforms["apns"] / len(devices) - 0.35) < 0.03
    assert abs(platforms["webpush"] / len(devices) - 0.05) < 0.015
    assert 0.01 < sum(not active for _, _, active in devices) / len(devices) < 0.03
    for platform, token, _ in devices:
        _check_token(platform, token)
    # the fake provider counts each seeded device in its own slot
    assert len({seeded_key(token) for _, token, _ in devices}) == len(devices)
    assert all(seeded_key(token)[0] == "seeded" for _, token, _ in devices)
    with connection.cursor() as cursor:
        cursor.execute("SELECT platform, avg(length(token)) FROM audience_device d JOIN audience_recipient r"
                       " ON r.id = d.recipient_id WHERE r.external_id LIKE 'seedr-%' GROUP BY platform")
        lengths = dict(cursor.fetchall())
    assert 155 < lengths["fcm"] < 162 and lengths["apns"] == 64 and lengths["webpush"] > 300

    again = seed_audience(users, "real-fans", devices="realistic")
    assert (again.recipients_created, again.follows_created) == (0, 0)
    assert seeded.count() == len(devices)
    assert seed_audience(users, "real-fans-2", devices="realistic").follows_created == users  # same users
    with pytest.raises(ValueError, match="seeded with --devices realistic"):
        seed_audience(10, "real-fans", devices="single")


def test_token_counter_counts_any_token_per_device():
    counter = TokenCounter()
    tokens = ["fake:0000000007:abc", "seed00000000029" + "x" * 140, "5eed00000000029" + "0" * 49,
              '{"endpoint":"https://fcm.googleapis.com/fcm/send/seed00000000030abc","keys":{}}',
              "some-real-token", "seed-not-digits", "5eed123"]
    for token in tokens + tokens[:2]:
        counter.add(token)
    # a key is one device whatever its token looks like (seeded keys are unique across platforms)
    assert counter.stats() == {"received": 9, "unique": 6, "duplicates": 3, "bytes": 0}


@pytest.mark.parametrize("command", ["seed_audience", "bench_fanout", "bench_priority"])
def test_an_unknown_device_profile_is_refused_with_the_choices(command, capsys):
    with pytest.raises((CommandError, SystemExit)) as info:
        call_command(command, "--users", "5", "--devices", "heavy")
    message = str(info.value) if isinstance(info.value, CommandError) else capsys.readouterr().err
    if isinstance(info.value, SystemExit):
        assert info.value.code != 0
    assert "heavy" in message and "realistic" in message and "single" in message


@pytest.mark.django_db(transaction=True)
def test_fan_out_to_a_realistic_audience_reaches_every_active_device_exactly_once(stack, provider):
    seed_audience(3000, "real-fanout", devices="realistic")
    notification = notify(category="goal-alerts", audience={"topic": "real-fanout"}, channels=["push"],
                          title="GOAL", idempotency_key=f"t-{uuid.uuid4()}")
    done = completed(notification.pk)
    reachable, skipped = expected_counts("real-fanout")
    assert (done.sent, done.skipped, done.failed) == (reachable, skipped, 0)
    with connection.cursor() as cursor:  # from the seeded data, not from the pipeline's records
        cursor.execute("""
            SELECT count(*) FROM audience_device d JOIN audience_recipient r ON r.id = d.recipient_id
            JOIN audience_follow f ON f.recipient_id = r.id JOIN audience_topic t ON t.id = f.topic_id
            WHERE t.slug = 'real-fanout' AND d.is_active AND r.is_active AND NOT EXISTS (
                SELECT 1 FROM preferences_preference p JOIN preferences_category c ON c.id = p.category_id
                WHERE p.recipient_id = r.id AND p.channel = 'push' AND c.slug = 'goal-alerts' AND NOT p.enabled)""")
        active_devices = cursor.fetchone()[0]
    assert active_devices > reachable * 1.25  # about 1.3 devices a user
    stats = provider.stats()
    assert stats["received"] == stats["unique"] == active_devices and stats["duplicates"] == 0
    assert expected_devices(notification.pk) == active_devices
    assert stats["bytes"] > active_devices * 120  # real token sizes on the wire


@pytest.mark.django_db(transaction=True)
def test_a_device_that_fails_for_now_is_retried_alone_when_the_users_other_device_took_it(stack, provider):
    """A user with a phone and a tablet: the tablet's token answers Unavailable, the phone's is sent. The user is
    recorded sent, and the tablet alone is tried again until it gets the message: each device exactly once."""
    from apps.harness.fake_server import Faults

    seed_audience(2000, "real-retry", devices="realistic")
    provider.reset(Faults(fail_unavailable=0.05, retry_after_s=0.0))  # 5 attempts all failing: ~1e-7 a device
    notification = notify(category="goal-alerts", audience={"topic": "real-retry"}, channels=["push"],
                          title="GOAL", idempotency_key=f"t-{uuid.uuid4()}")
    done = completed(notification.pk, timeout=180)
    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT count(*) FROM audience_device d JOIN delivery_delivery x ON x.recipient_id = d.recipient_id
            WHERE x.id BETWEEN %s AND %s AND x.status = 1 AND d.is_active""", list(Delivery.key_range(notification.pk)))
        devices_of_sent = cursor.fetchone()[0]
    # The recipient is recorded when one device took it, but the notification stays open until the
    # device retries have run: at completion every device has been reached.
    stats = provider.stats()
    assert stats["injected"].get("unavailable", 0) > 0, stats
    assert done.sent > 0 and stats["duplicates"] == 0, stats
    assert stats["unique"] == devices_of_sent, (stats, devices_of_sent)
