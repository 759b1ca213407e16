"""A local-time A/B campaign in headless Chromium on the production-style web server, under the controllable
clock: a Marketer builds it (09:00-style local time, two variants in the inline), a Sender schedules it, beat
launches it, time moves forward, each timezone's wave goes out at its local time (the waves table shows it),
and the results panel compares the variants. Each recipient gets exactly one message, of their variant."""

from __future__ import annotations

import signal
import sys
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from apps.campaigns.models import Campaign, CampaignPart, CampaignStatus, PartState
from apps.content.models import Template
from apps.core import clock
from apps.delivery.models import Delivery
from apps.preferences.models import Category
from tests.campaigns.test_campaign_journeys_browser import (  # noqa: F401
    by_css,
    log_in,
    pick,
    shot,
    site,
    staff,
    text_of,
    type_into,
    wait,
)
from tests.conftest import wait_until
from tests.delivery.test_pipeline import completed, expected_counts

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def moving_clock():
    clock.reset()
    yield clock
    clock.reset()


def wave_rows(driver) -> dict[tuple[str, str], str]:  # noqa: ANN001
    """(timezone, variant) -> status, as the waves table under the progress bar shows them."""
    rows = {}
    for row in driver.find_elements("css selector", "#campaign-waves tr[data-timezone]"):
        cells = [cell.text for cell in row.find_elements("css selector", "td")]
        rows[(cells[0], cells[1])] = cells[3]
    return rows


def variant_rows(driver) -> dict[str, int] | None:  # noqa: ANN001
    rows = driver.find_elements("css selector", "#campaign-results .campaign-variants tr[data-variant]")
    found = {row.get_attribute("data-variant"): row.find_element("css selector", ".sent").text for row in rows}
    return {name: int(sent) for name, sent in found.items()} if found else None


def recipients_outside_their_variant(part: CampaignPart) -> tuple[int, int]:
    """(deliveries of this part's notification, of which to a recipient whose id % 100 is not in its share)."""
    low, high = part.share
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), count(*) FILTER (WHERE recipient_id %% 100 < %s OR recipient_id %% 100 >= %s)"
                       " FROM delivery_delivery WHERE id BETWEEN %s AND %s",
                       [low, high, *Delivery.key_range(part.notification_id)])
        return cursor.fetchone()


def outcomes_of(parts: list[CampaignPart]) -> dict:
    """Per wave and variant: its notification's counts and its deliveries by status and reason."""
    found = {}
    for part in parts:
        notification = part.notification
        rows = Delivery.of_notification(part.notification_id).values_list("status", "reason")
        found[(part.timezone, str(part.variant))] = {
            "targeted": notification.targeted, "sent": notification.sent, "skipped": notification.skipped,
            "outcomes": dict(Counter(f"{status}:{reason}" for status, reason in rows))}
    return found


def test_local_time_ab_campaign_from_compose_to_compared_variants(browser, site, stack, provider, fans,  # noqa: F811
                                                                   moving_clock, tmp_path):
    Template.objects.create(name="Morning A", push_title="Variant A: good morning")
    Template.objects.create(name="Morning B", push_title="Variant B: good morning")
    # the send's time of day, in UTC three hours from now: Tokyo's and Sydney's 09:00-style waves are past
    # (they go at launch), Madrid's, London's, UTC's and New York's come as the clock moves forward
    wall = (timezone.now() + timedelta(hours=3)).replace(second=0, microsecond=0)
    log_in(browser, site, staff("Marketer"))
    browser.get(f"{site}/admin/campaigns/campaign/add/")
    type_into(browser, "#id_name", "Morning kick-off")
    by_css(browser, f"#id_category option[value='{Category.objects.get(slug='goal-alerts').pk}']").click()
    pick(browser, "template", "Morning", "Morning A")
    by_css(browser, "input[name=channels][value=push]").click()
    type_into(browser, "#id_context", "{}")
    pick(browser, "topic", "test", "Test-Fans")
    by_css(browser, "#id_schedule_kind option[value=local]").click()
    type_into(browser, "#id_local_date", wall.strftime("%Y-%m-%d"))
    type_into(browser, "#id_local_time", wall.strftime("%H:%M"))
    for index, (name, share) in enumerate([("Morning A", "50"), ("Morning B", "50")]):
        by_css(browser, "#variants-group .add-row a").click()
        wait(browser, lambda i=index: browser.find_elements("css selector", f"#id_variants-{i}-share"),
             message=f"variant row {index}")
        pick(browser, f"variants-{index}-template", "Morning", name)
        type_into(browser, f"#id_variants-{index}-share", share)
    shot(browser, "local-ab-compose")
    by_css(browser, "input[name=_continue]").click()
    campaign = wait(browser, lambda: Campaign.objects.filter(name="Morning kick-off").first(), message="the save")
    assert [(str(v.template), v.share) for v in campaign.variants.all()] == [("Morning A", 50), ("Morning B", 50)]
    assert (campaign.local_date, campaign.local_time.strftime("%H:%M")) == (wall.date(), wall.strftime("%H:%M"))

    stack.spawn("beat", [sys.executable, "-m", "celery", "-A", "notifications_project", "beat", "-S",
                         "django_celery_beat.schedulers:DatabaseScheduler", "--max-interval", "1",
                         "-s", str(tmp_path / "beat-schedule"), "-l", "info"])
    try:
        log_in(browser, site, staff("Sender"))
        browser.get(f"{site}/admin/campaigns/campaign/")
        by_css(browser, f"input[name=_selected_action][value='{campaign.pk}']").click()
        by_css(browser, "select[name=action] option[value=schedule_campaigns]").click()
        by_css(browser, "button[name=index]").click()
        wait(browser, lambda: "scheduled" in text_of(browser, ".messagelist"), message="the schedule")
        # beat launches it: the earliest timezone has reached the time; one wave per timezone and variant
        wait_until(lambda: CampaignPart.objects.filter(run__campaign=campaign).count() == 12, timeout=60,
                   message="beat to launch the campaign's 6 waves x 2 variants")
        browser.get(f"{site}/admin/campaigns/campaign/{campaign.pk}/change/")
        wait(browser, lambda: text_of(browser, "#campaign-status") == "Running", message="status running")
        found = list(CampaignPart.objects.filter(run__campaign=campaign).select_related("variant"))
        now = clock.now_datetime()
        past = [p for p in found if p.due_at <= now]  # released at launch
        assert {p.timezone for p in past} == {"Asia/Tokyo", "Australia/Sydney"}
        groups = [(now, past)] + [(due, [p for p in found if p.due_at == due])
                                  for due in sorted({p.due_at for p in found if p.due_at > now})]
        sent_before = 0
        for due, these in groups:
            if due > now:
                shown = wait(browser, lambda: wave_rows(browser) or None, message="the waves table")
                assert all(shown[(p.timezone, str(p.variant))] == "pending" for p in these), shown
                assert provider.stats()["unique"] == sent_before, "a wave went before its local time"
                moving_clock.advance((due - clock.now_datetime()).total_seconds() + 1)
            for part in these:
                part = wait_until(lambda p=part: CampaignPart.objects.filter(
                    pk=p.pk, state=PartState.RELEASED).first(), timeout=30, message=f"wave {part}")
                sent_before += completed(part.notification_id).sent
            wait(browser, lambda t=these: all(wave_rows(browser).get((p.timezone, str(p.variant))) == "completed"
                                              for p in t), message=f"the waves table to show {due} completed")
            assert provider.stats()["unique"] == sent_before  # this wave's recipients, and nobody else
        wait(browser, lambda: text_of(browser, "#campaign-status") == "Completed", timeout=30,
             message="completion")
        shot(browser, "local-ab-waves")
        compared = wait(browser, lambda: variant_rows(browser), message="the variants compared")
        parts = list(CampaignPart.objects.filter(run__campaign=campaign).select_related("variant", "notification"))
        expected = {}
        for part in parts:
            expected[str(part.variant)] = expected.get(str(part.variant), 0) + part.notification.sent
        assert compared == expected and set(compared) == {"Morning A (50%)", "Morning B (50%)"}, compared
        browser.execute_script("document.getElementById('campaign-results').scrollIntoView()")
        shot(browser, "local-ab-results")
    finally:
        stack.kill("beat", signal.SIGTERM)
    # each recipient exactly one message, of their variant
    reachable, _ = expected_counts("test-fans")
    stats = provider.stats()
    assert stats["unique"] == reachable == sum(expected.values()) and stats["duplicates"] == 0, outcomes_of(parts)
    assert sum(recipients_outside_their_variant(p)[0] for p in parts) == 3000
    assert all(recipients_outside_their_variant(p)[1] == 0 for p in parts)
    assert all(p.notification.template_id == p.variant.template_id for p in parts)
    assert Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.COMPLETED
