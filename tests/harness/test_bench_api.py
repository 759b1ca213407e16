"""manage.py bench_api: create-notification latency against a web tier it starts; one JSON line, and
nothing left behind (its API key, notifications, Redis keys and topics)."""

import json
from io import StringIO

from django.conf import settings
from django.core.management import call_command

from apps.delivery.models import ApiKey, Notification


def test_bench_api_prints_one_json_line_and_cleans_up(transactional_db, broker):
    prefix = settings.REDIS_KEY_PREFIX
    out = StringIO()
    call_command("bench_api", "--rate", "20", "--requests", "20", "--warmup", "2", stdout=out)
    [line] = out.getvalue().strip().splitlines()
    report = json.loads(line)
    assert report["statuses"] == {"202": 20}, report
    assert 0 < report["p50_ms"] <= report["p99_ms"] <= report["max_ms"]
    assert report["requests"] == 20 and report["rate_per_s"] == 20.0
    assert not ApiKey.objects.filter(name__startswith="bench-api-").exists()
    assert not Notification.objects.filter(idempotency_key__startswith="bench-api-").exists()
    assert settings.REDIS_KEY_PREFIX == prefix
