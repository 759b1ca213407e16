"""Campaigns in the admin, as a marketer clicks them, on the real pipeline; beat; pause, resume, cancel."""

import sys
import time
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from apps.audience.models import Topic
from apps.campaigns import service
from apps.campaigns.models import Campaign, CampaignEvent, CampaignRun, CampaignStatus
from apps.content.models import Template
from apps.content.template_checks import sms_segments
from apps.delivery.models import Notification
from tests.conftest import CROWD_TOPIC, wait_until
from tests.delivery.test_pipeline import completed, expected_counts

pytestmark = pytest.mark.django_db(transaction=True)


def user_with(codenames: list[str], name: str) -> Client:
    group, _ = Group.objects.get_or_create(name=name)
    group.permissions.set(Permission.objects.filter(codename__in=codenames))
    user = User.objects.create_user(name + uuid.uuid4().hex[:4], f"{name}@club.example", "pw", is_staff=True)
    user.groups.add(group)
    client = Client()
    client.force_login(user)
    return client


MARKETER = ["add_campaign", "change_campaign", "view_campaign", "add_template", "change_template", "view_template",
            "view_topic", "view_segment", "view_category"]


@pytest.fixture
def marketer(fans) -> Client:
    return user_with(MARKETER, "marketer")


@pytest.fixture
def sender(fans) -> Client:
    return user_with([*MARKETER, "launch_campaign"], "sender")


def make_template(**texts) -> Template:
    return Template.objects.create(name=f"t-{uuid.uuid4().hex[:6]}", **texts)


def campaign_form(template: Template, **overrides) -> dict:
    from apps.preferences.models import Category

    return {"name": "Derby day", "category": Category.objects.get(slug="goal-alerts").pk, "template": template.pk,
            "channels": ["push"], "context": '{"team": "Home"}', "audience_kind": "topic",
            "topic": Topic.objects.get(slug="test-fans").pk, "schedule_kind": "now", "crontab_timezone": "UTC",
            "events-TOTAL_FORMS": "0", "events-INITIAL_FORMS": "0", "variants-TOTAL_FORMS": "0",
            "variants-INITIAL_FORMS": "0", **overrides}


def test_template_errors_are_shown_at_the_field(marketer):
    answer = marketer.post("/admin/content/template/add/", {
        "name": "bad", "push_title": "GOAL {% if team %}{{ team }}",
        "push_body": "Hi {{ recipient.name }}, {{ scorer }} scored",
        "sms_text": "ok", "sample_context": '{"team": "Home"}'})
    assert answer.status_code == 200
    errors = answer.context["adminform"].form.errors
    assert "template syntax" in errors["push_title"][0]
    assert "missing variable scorer" in errors["push_body"][0]
    assert not Template.objects.filter(name="bad").exists()
    assert sms_segments("x" * 160) == (160, 1, "GSM-7")
    assert sms_segments("x" * 161) == (161, 2, "GSM-7")
    assert sms_segments("€" * 80) == (160, 1, "GSM-7")
    assert sms_segments("⚽" * 71) == (71, 2, "UCS-2")


def test_marketer_builds_previews_and_tests_but_only_a_sender_launches(marketer, sender, stack, provider):
    answer = marketer.post("/admin/content/template/add/", {
        "name": "goal", "push_title": "GOAL {{ team }}", "push_body": "Hi {{ recipient.external_id }}",
        "sms_text": "GOAL {{ team }}", "sample_context": '{"team": "Home"}'})
    assert answer.status_code == 302, answer.context["adminform"].form.errors
    template = Template.objects.get(name="goal")
    preview = marketer.get(f"/admin/content/template/{template.pk}/preview/", {"recipient": "seed-000000001"})
    assert preview.status_code == 200 and b"GOAL Home" in preview.content and b"Hi seed-000000001" in preview.content
    answer = marketer.post("/admin/campaigns/campaign/add/", campaign_form(template))
    assert answer.status_code == 302, answer.context["adminform"].form.errors
    campaign = Campaign.objects.get(name="Derby day")
    page = marketer.get(f"/admin/campaigns/campaign/{campaign.pk}/change/")
    assert b"3,000 users" in page.content and b"campaign-progress-bar" in page.content
    # test send to the marketer alone
    marketer.post("/admin/campaigns/campaign/", {"action": "send_test_to_me", "_selected_action": [campaign.pk]})
    test = Notification.objects.filter(audience__has_key="recipients").latest("pk")
    assert completed(test.pk).targeted == 1
    # a marketer cannot launch: the action is not offered
    answer = marketer.post("/admin/campaigns/campaign/", {"action": "launch_campaigns",
                                                         "_selected_action": [campaign.pk]}, follow=True)
    assert not CampaignRun.objects.filter(campaign=campaign).exists()
    assert b"launch_campaigns" not in marketer.get("/admin/campaigns/campaign/").content
    # a sender launches it
    sender.post("/admin/campaigns/campaign/", {"action": "launch_campaigns", "_selected_action": [campaign.pk]})
    run = CampaignRun.objects.get(campaign=campaign)
    done = completed(run.notification_id)
    reachable, _ = expected_counts("test-fans")
    assert done.sent == reachable and provider.stats()["duplicates"] == 0
    wait_until(lambda: Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.COMPLETED, timeout=10)
    progress = sender.get(f"/admin/campaigns/campaign/{campaign.pk}/progress/").json()
    assert progress["sent"] == reachable and progress["done"] == progress["targeted"] == 3000
    actions = list(CampaignEvent.objects.filter(campaign=campaign).order_by("at").values_list("action", flat=True))
    assert actions[0] == "created" and "test sent" in actions and "launched" in actions and actions[-1] == "completed"


def test_form_refuses_past_times_bad_crontabs_and_empty_audiences(marketer):
    template = make_template(push_title="Hi")
    Topic.objects.create(slug="nobody-follows", name="Empty")
    cases = [
        ({"schedule_kind": "at", "send_at_0": "2020-01-01", "send_at_1": "10:00"}, "send_at", "in the past"),
        ({"schedule_kind": "recurring", "crontab": "61 * * * *"}, "crontab", "invalid crontab"),
        ({"schedule_kind": "recurring", "crontab": "0 9 * *"}, "crontab", "5 fields"),
        ({"topic": Topic.objects.get(slug="nobody-follows").pk}, "audience_kind", "empty"),
    ]
    for overrides, field, words in cases:
        answer = marketer.post("/admin/campaigns/campaign/add/", campaign_form(template, **overrides))
        assert answer.status_code == 200, overrides
        assert words in " ".join(answer.context["adminform"].form.errors[field]), overrides


def test_csv_upload_reports_matches_and_rejected_lines(marketer):
    template = make_template(push_title="Hi")
    upload = SimpleUploadedFile("ids.csv", b"user_id\nseed-000000001\nnot-a-user\nseed-000000002\n\nghost\n")
    answer = marketer.post("/admin/campaigns/campaign/add/",
                           campaign_form(template, audience_kind="upload", topic="", member_csv=upload), follow=True)
    text = answer.content.decode()
    assert "2 user(s) matched, 2 line(s) rejected" in text
    assert "line 3: &#x27;not-a-user&#x27;" in text and "line 6: &#x27;ghost&#x27;" in text
    campaign = Campaign.objects.get(name="Derby day")
    assert service.estimate_audience(campaign) == 2


def test_beat_launches_a_scheduled_campaign_once_even_with_two_beats(stack, provider, fans):
    from apps.preferences.models import Category

    template = make_template(push_title="Kick-off in 10 minutes")
    campaign = Campaign.objects.create(name="kick-off", category=Category.objects.get(slug="goal-alerts"),
                                       template=template, channels=["push"], audience_kind="topic",
                                       topic=Topic.objects.get(slug="test-fans"), schedule_kind="at",
                                       send_at=timezone.now() + timedelta(seconds=4))
    service.schedule(campaign, None)
    for index in range(2):  # two beat processes: a mistaken double deployment
        stack.spawn(f"beat-{index}", [sys.executable, "-m", "celery", "-A", "notifications_project", "beat",
                                      "-S", "django_celery_beat.schedulers:DatabaseScheduler", "--max-interval", "1",
                                      "-s", f"/tmp/beat-{uuid.uuid4().hex}", "-l", "info"])
    try:
        run = wait_until(lambda: CampaignRun.objects.filter(campaign=campaign).first(), timeout=60,
                         message="beat to launch the campaign")
        done = completed(run.notification_id)
        time.sleep(3)  # room for a second fire
    finally:
        stack.kill("beat-0")
        stack.kill("beat-1")
    assert CampaignRun.objects.filter(campaign=campaign).count() == 1
    assert Notification.objects.filter(idempotency_key__startswith=f"campaign:{campaign.pk}:").count() == 1
    reachable, _ = expected_counts("test-fans")
    assert done.sent == reachable and provider.stats()["duplicates"] == 0


def test_a_retried_or_duplicated_launch_sends_once(stack, provider, fans):
    from apps.campaigns.tasks import launch_campaign
    from apps.preferences.models import Category

    campaign = Campaign.objects.create(name="twice", category=Category.objects.get(slug="goal-alerts"),
                                       template=make_template(push_title="Hi"), channels=["push"],
                                       audience_kind="topic", topic=Topic.objects.get(slug="test-fans"))
    first = launch_campaign(campaign.pk)
    assert launch_campaign(campaign.pk) == first  # a retried task
    launch_campaign.apply_async(args=[campaign.pk], queue="dispatch")  # a second fire through Celery
    completed(first)
    time.sleep(2)
    assert CampaignRun.objects.filter(campaign=campaign).count() == 1
    assert provider.stats()["duplicates"] == 0


def launched(sender_client: Client, provider, name: str) -> Campaign:  # noqa: ANN001
    """A campaign to the 20,000-fan crowd: four batches of 5,000, so that pausing or cancelling has batches
    still to stop (a batch in flight finishes)."""
    from apps.preferences.models import Category

    provider.reset(latency_ms=1000)  # each provider call takes a while, so a pause lands mid-send
    campaign = Campaign.objects.create(name=name, category=Category.objects.get(slug="goal-alerts"),
                                       template=make_template(push_title="Hi"), channels=["push"],
                                       audience_kind="topic", topic=Topic.objects.get(slug=CROWD_TOPIC))
    service.launch(campaign.pk)
    return Campaign.objects.get(pk=campaign.pk)


def test_pause_then_resume_continues_without_resending(sender, stack, provider, crowd):
    campaign = launched(sender, provider, "pausable")
    sender.post("/admin/campaigns/campaign/", {"action": "pause_campaigns", "_selected_action": [campaign.pk]})
    time.sleep(3)
    held = provider.stats()["received"]
    time.sleep(2)
    assert provider.stats()["received"] == held, "sending went on while paused"
    assert held < expected_counts(CROWD_TOPIC)[0], "everything was sent before the pause: this proves nothing"
    assert Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.PAUSED
    sender.post("/admin/campaigns/campaign/", {"action": "resume_campaigns", "_selected_action": [campaign.pk]})
    done = completed(campaign.runs.get().notification_id)
    reachable, _ = expected_counts(CROWD_TOPIC)
    stats = provider.stats()
    assert done.sent == reachable and stats["unique"] == reachable and stats["duplicates"] == 0


def test_cancel_stops_the_remaining_batches_and_accounts_for_everyone(sender, stack, provider, crowd):
    campaign = launched(sender, provider, "cancellable")
    sender.post("/admin/campaigns/campaign/", {"action": "cancel_campaigns", "_selected_action": [campaign.pk]})
    done = completed(campaign.runs.get().notification_id)
    assert done.sent + done.skipped + done.failed == done.targeted == 20_000
    assert done.sent < expected_counts(CROWD_TOPIC)[0]  # it did stop
    assert provider.stats()["unique"] == done.sent and provider.stats()["duplicates"] == 0
    assert Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.CANCELLED


def test_a_send_that_finishes_while_paused_is_completed_on_resume(sender, stack, provider, fans):
    from apps.preferences.models import Category

    provider.reset(latency_ms=1500)  # the one batch of 3,000 is in flight when the pause comes: it finishes
    campaign = Campaign.objects.create(name="short", category=Category.objects.get(slug="goal-alerts"),
                                       template=make_template(push_title="Hi"), channels=["push"],
                                       audience_kind="topic", topic=Topic.objects.get(slug="test-fans"))
    notification = service.launch(campaign.pk)
    wait_until(lambda: provider.stats()["requests"] > 0, timeout=60, message="the batch to be sending")
    sender.post("/admin/campaigns/campaign/", {"action": "pause_campaigns", "_selected_action": [campaign.pk]})
    completed(notification.pk)
    assert Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.PAUSED
    sender.post("/admin/campaigns/campaign/", {"action": "resume_campaigns", "_selected_action": [campaign.pk]})
    assert Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.COMPLETED  # not "running" for ever
