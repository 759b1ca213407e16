"""A real headless Chromium opens a campaign's admin page during a send and sees the progress bar move."""

from pathlib import Path

import pytest
from django.contrib.auth.models import User

from apps.audience.models import Topic
from apps.campaigns import service
from apps.campaigns.models import Campaign
from apps.content.models import Template
from apps.preferences.models import Category
from tests.conftest import CROWD_TOPIC, wait_until
from tests.delivery.test_pipeline import completed

OUTPUT = Path(__file__).resolve().parents[2] / "test-output"


@pytest.mark.django_db(transaction=True)
def test_progress_bar_moves_while_the_campaign_sends(browser, live_server, stack, provider, crowd):
    from django.conf import settings
    from django.contrib.sessions.backends.db import SessionStore

    admin = User.objects.create_superuser("watcher", "watcher@club.example", "pw")
    session = SessionStore()
    session["_auth_user_id"] = str(admin.pk)
    session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"  # not a login-lockout backend
    session["_auth_user_hash"] = admin.get_session_auth_hash()
    session.save()
    browser.get(f"{live_server.url}/admin/login/")
    browser.add_cookie({"name": settings.SESSION_COOKIE_NAME, "value": session.session_key, "path": "/"})

    provider.reset(latency_ms=400)  # slow enough to watch: four batches of 5,000, a few seconds
    campaign = Campaign.objects.create(name="watched", category=Category.objects.get(slug="goal-alerts"),
                                       template=Template.objects.create(name="w", push_title="GOAL"),
                                       channels=["push"], audience_kind="topic",
                                       topic=Topic.objects.get(slug=CROWD_TOPIC))
    notification = service.launch(campaign.pk)
    browser.get(f"{live_server.url}/admin/campaigns/campaign/{campaign.pk}/change/")

    def bar() -> float:
        return float(browser.find_element("id", "campaign-progress-bar").get_attribute("value") or 0)

    first = wait_until(lambda: bar() or None, timeout=30, message="the progress bar to start")
    OUTPUT.mkdir(exist_ok=True)
    browser.save_screenshot(str(OUTPUT / "campaign-progress.png"))
    later = wait_until(lambda: bar() > first and bar(), timeout=30, message="the progress bar to move")
    assert later > first
    completed(notification.pk)
    wait_until(lambda: bar() == 20_000, timeout=15, message="the bar to reach the end")
    assert "sent" in browser.find_element("id", "campaign-progress-text").text
