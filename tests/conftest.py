"""Fixtures on real services: this run's own PostgreSQL database (pytest-django), Redis keys under a
run prefix, an embedded Tansu broker with this run's topics, and real Celery workers, bridges and the
fake provider as child processes. Everything is removed at the end of the run."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from apps.harness.fake_server import FakeProviderControl
from tests import flush_retry

flush_retry.install()

# The same fuzzed inputs on every run, so a CI result does not depend on luck. To explore new ones:
# pytest tests/api/test_hostile_input.py --hypothesis-profile=explore
_fuzzing = {"deadline": None, "suppress_health_check": [HealthCheck.function_scoped_fixture]}
hypothesis_settings.register_profile("suite", max_examples=150, derandomize=True, database=None, **_fuzzing)
hypothesis_settings.register_profile("explore", max_examples=3000, **_fuzzing)
hypothesis_settings.load_profile("suite")


@pytest.fixture(scope="session")
def django_db_setup(request, django_test_environment, django_db_blocker):  # noqa: ANN001, ANN201
    """This run's own database, always. pytest-django creates only the databases that the collected tests
    mark or ask for through `db`; the real-stack modules here reach PostgreSQL through module fixtures it
    cannot see, so one such file run alone used, and flushed, the development database."""
    from django.db import connection
    from django.test.utils import setup_databases, teardown_databases

    with django_db_blocker.unblock():
        config = setup_databases(verbosity=request.config.option.verbose, interactive=False, aliases={"default"},
                                 serialized_aliases=set())
    assert connection.settings_dict["NAME"].startswith("test_"), connection.settings_dict["NAME"]
    yield
    with django_db_blocker.unblock():
        teardown_databases(config, verbosity=request.config.option.verbose)


@pytest.fixture(scope="session")
def broker():
    from apps.streaming.client import ensure_topics
    from apps.streaming.local_broker import start_tansu

    process, servers = start_tansu()
    settings.KAFKA_BOOTSTRAP_SERVERS = servers
    ensure_topics()
    yield servers
    from apps.delivery import publisher

    publisher.close_producer()
    process.kill()
    process.wait()


@pytest.fixture(scope="session", autouse=True)
def redis_cleanup():
    yield
    from apps.core.redis_client import client

    for key in client().scan_iter(match=f"{settings.REDIS_KEY_PREFIX}*", count=10_000):
        client().delete(key)


@pytest.fixture(scope="session", autouse=True)
def attachments_cleanup():
    """The attachments this run stored in its own directory (settings: VAR_DIR/attachments/RUN_ID), which the
    processes it starts (workers, the web tier) share through the environment; removed at the end."""
    import os
    import shutil

    location = settings.STORAGES["attachments"]["OPTIONS"].get("location")
    own = bool(settings.RUN_ID and settings.ATTACHMENT_STORAGE == "filesystem" and location)
    if own:
        os.environ.setdefault("NOTIFY_ATTACHMENT_ROOT", str(location))
    yield
    if own:
        shutil.rmtree(location, ignore_errors=True)


@pytest.fixture(scope="session")
def stack(django_db_setup, django_db_blocker, broker):
    """The real pipeline: dispatch and send workers, the events bridge and two send bridges."""
    from apps.harness.processes import Stack

    # Each xdist worker's stack logs to a directory of its own: the same process names would share files.
    stack = Stack(log_dir=Path(settings.BASE_DIR) / "var" / "log" / os.environ.get("PYTEST_XDIST_WORKER", "main"))
    stack.env["KAFKA_BOOTSTRAP_SERVERS"] = broker
    stack.env["FAKE_PROVIDER_ROUTE_ALL_PUSH"] = "1"  # seeded FCM, APNs and Web Push devices too
    stack.start_fake_provider()
    stack.start_pipeline(send_workers=1, send_concurrency=2, send_bridges=2, priorities=("normal", "high", "low"))
    yield stack
    stack.stop()


@pytest.fixture
def provider(stack) -> FakeProviderControl:
    fake = FakeProviderControl(stack.env["FAKE_PROVIDER_URL"])
    fake.reset(latency_ms=0)
    return fake


def wait_until(predicate, timeout: float = 60.0, interval: float = 0.1, message: str = "condition"):  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


CROWD_TOPIC = "test-crowd"


@pytest.fixture
def crowd(transactional_db):
    """20,000 seeded fans: four send batches of 5,000, for tests that need several batches in flight."""
    from apps.harness.seeding import seed_audience

    return seed_audience(20_000, CROWD_TOPIC)


@pytest.fixture
def fans(transactional_db):
    """3,000 seeded fans of one topic (transactional: the worker processes must see them)."""
    from apps.harness.seeding import seed_audience

    return seed_audience(3000, "test-fans")


def push_recipients(size: int) -> list[int]:
    """`size` new recipients, each with one push device of the fake provider, by id (the default
    categories made too)."""
    from apps.audience.models import Device, Recipient
    from apps.preferences.defaults import ensure_default_categories

    ensure_default_categories()
    tag = uuid.uuid4().hex[:8]
    people = Recipient.objects.bulk_create([Recipient(external_id=f"{tag}-{i}") for i in range(size)])
    Device.objects.bulk_create([Device(recipient=r, platform="fake", token=f"fake:{r.pk:010d}:{tag}") for r in people])
    return [r.pk for r in people]


def reachable_fan_ids(topic_slug: str, category: str = "goal-alerts", limit: int | None = None) -> list[int]:
    """The followers of a topic a push of `category` reaches (active, an active device, not opted out), by id,
    worked out from the seeded data without the pipeline."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT r.id FROM audience_follow f JOIN audience_topic t ON t.id = f.topic_id AND t.slug = %s
            JOIN audience_recipient r ON r.id = f.recipient_id AND r.is_active
            LEFT JOIN preferences_preference p ON p.recipient_id = r.id AND p.channel = 'push'
                 AND p.category_id = (SELECT id FROM preferences_category WHERE slug = %s)
            WHERE COALESCE(p.enabled, true)
              AND EXISTS (SELECT 1 FROM audience_device d WHERE d.recipient_id = r.id AND d.is_active)
            ORDER BY r.id LIMIT %s""", [topic_slug, category, limit])
        return [row[0] for row in cursor.fetchall()]


def reachable_fans(count: int = 1, category: str = "goal-alerts") -> list[int]:
    """The first `count` test-fans a push of `category` reaches. The seeded data leaves some fans unreachable
    by id hash (apps/harness/seeding.py), and ids run on from one test to the next, so "the first follower"
    is not always one."""
    found = reachable_fan_ids("test-fans", category, count)
    assert len(found) == count, found
    return found


TEST_SOURCE = "tests"  # the event source raw events in the tests name ("source": "tests")


@pytest.fixture
def event_source(transactional_db):
    """The event source the tests' raw events come from: registered, active, with no limits."""
    from apps.delivery.models import EventSource

    return EventSource.objects.get_or_create(name=TEST_SOURCE, defaults={"owner": "tests"})[0]


@pytest.fixture
def smtp():
    """A local SMTP server (aiosmtpd) that this process's email transport sends to; the handler keeps what
    arrived. The transports are rebuilt around it."""
    from aiosmtpd.controller import Controller
    from django.test import override_settings

    from apps.harness import protocol_servers as servers
    from apps.providers import registry

    handler = servers.SmtpHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=servers.free_port())
    controller.start()
    registry.reset()
    with override_settings(EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend", EMAIL_HOST="127.0.0.1",
                           EMAIL_PORT=controller.port):
        yield handler
    registry.reset()
    controller.stop()


@pytest.fixture
def browser():
    """Headless Chromium (Debian's chromium and chromium-driver, which bin/test installs) driven by Selenium."""
    import shutil

    from selenium import webdriver

    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.fail("Debian's chromium and chromium-driver are needed: bin/test installs them")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=shutil.which("chromedriver")),
                              options=options)
    yield driver
    driver.quit()
