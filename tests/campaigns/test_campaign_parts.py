"""Campaigns split into several notifications, on the real pipeline: a send at each recipient's local time
(one wave per timezone, released when its time comes, under the controllable clock) and A/B variants."""

import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from apps.audience.models import Topic
from apps.campaigns import service
from apps.campaigns.models import Campaign, CampaignPart, CampaignStatus, PartState
from apps.core import clock
from apps.delivery.models import Delivery, Notification
from tests.campaigns.test_campaigns import MARKETER, campaign_form, make_template, user_with
from tests.conftest import wait_until
from tests.delivery.test_pipeline import completed, expected_counts

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def marketer(fans):  # noqa: ANN201
    return user_with(MARKETER, "marketer")


@pytest.fixture
def sender(fans):  # noqa: ANN201
    return user_with([*MARKETER, "launch_campaign"], "sender")


@pytest.fixture
def moving_clock():
    clock.reset()
    yield clock
    clock.reset()


def outside_zones(notification_id: int, zones: list[str]) -> int:
    """Deliveries of this notification to recipients whose timezone is not one of `zones`."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM delivery_delivery d JOIN audience_recipient r ON r.id = d.recipient_id"
                       " WHERE d.id BETWEEN %s AND %s AND NOT r.timezone = ANY(%s)",
                       [*Delivery.key_range(notification_id), zones])
        return cursor.fetchone()[0]


def fans_in_share(low: int, high: int) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM audience_follow f JOIN audience_topic t ON t.id = f.topic_id"
                       " WHERE t.slug = 'test-fans' AND f.recipient_id %% 100 >= %s AND f.recipient_id %% 100 < %s",
                       [low, high])
        return cursor.fetchone()[0]


def test_local_time_campaign_releases_each_timezone_at_its_local_time_and_not_before(sender, stack, provider,
                                                                                        moving_clock):
    from apps.preferences.models import Category

    # the pipeline's clock at 07:30 UTC the next day: some timezones have reached 09:00 already, others not
    day = (clock.now_datetime() + timedelta(days=1)).date()
    moving_clock.advance(datetime.combine(day, datetime.min.time(), UTC).timestamp() + 7.5 * 3600 - clock.now())
    campaign = Campaign.objects.create(name="local", category=Category.objects.get(slug="goal-alerts"),
                                       template=make_template(push_title="Good morning"), channels=["push"],
                                       audience_kind="topic", topic=Topic.objects.get(slug="test-fans"),
                                       schedule_kind="local", local_date=day,
                                       local_time=datetime.strptime("09:00", "%H:%M").time())
    service.launch(campaign.pk)
    parts = list(CampaignPart.objects.filter(run__campaign=campaign))
    assert {p.timezone for p in parts} == {"Europe/London", "Europe/Madrid", "America/New_York", "Asia/Tokyo",
                                           "Australia/Sydney", "UTC"}
    assert next(p for p in parts if p.timezone == "UTC").zones == [""]  # empty means UTC
    now = clock.now_datetime()
    for part in parts:
        local = part.due_at.astimezone(ZoneInfo(part.timezone))
        assert (local.date(), local.strftime("%H:%M")) == (day, "09:00")
        assert (part.state == PartState.RELEASED) == (part.due_at <= now), part  # past waves go at once
    assert any(p.state == PartState.PENDING for p in parts), "every wave was due at launch: this proves nothing"
    for part in parts:
        if part.state == PartState.RELEASED:
            completed(part.notification_id)
    sent = provider.stats()["unique"]
    for due in sorted({p.due_at for p in parts if p.state == PartState.PENDING}):
        waiting = [p for p in parts if p.due_at == due]
        moving_clock.advance((due - clock.now_datetime()).total_seconds() - 60)  # a minute before
        time.sleep(3)  # the release task looks every second under the controllable clock
        assert all(CampaignPart.objects.get(pk=p.pk).state == PartState.PENDING for p in waiting)
        assert provider.stats()["unique"] == sent, "a wave went before its time"
        moving_clock.advance(61)
        for part in waiting:
            part = wait_until(lambda p=part: CampaignPart.objects.filter(pk=p.pk, state=PartState.RELEASED).first(),
                              timeout=30, message=f"wave {part.timezone} to be released")
            completed(part.notification_id)
        sent = provider.stats()["unique"]
        progress = sender.get(f"/admin/campaigns/campaign/{campaign.pk}/progress/").json()
        shown = {w["timezone"]: w for w in progress["waves"]}
        assert all(shown[p.timezone]["status"] == "completed" for p in waiting)
        assert sum(w["sent"] for w in shown.values()) == progress["sent"]
    notifications = Notification.objects.filter(campaignpart__run__campaign=campaign)
    assert sum(n.targeted for n in notifications) == 3000
    for part in CampaignPart.objects.filter(run__campaign=campaign):
        assert outside_zones(part.notification_id, part.zones) == 0, part
    reachable, _ = expected_counts("test-fans")
    stats = provider.stats()
    assert sum(n.sent for n in notifications) == reachable == stats["unique"] and stats["duplicates"] == 0
    wait_until(lambda: Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.COMPLETED, timeout=10,
               message="the campaign to complete after its last wave")
    page = sender.get(f"/admin/campaigns/campaign/{campaign.pk}/change/")
    assert page.status_code == 200 and b'id="campaign-waves"' in page.content
    # a retried launch makes no wave again
    service.launch(campaign.pk)
    assert Notification.objects.filter(campaignpart__run__campaign=campaign).count() == len(parts)


def test_ab_campaign_splits_the_audience_by_share_and_each_recipient_gets_one_variant(sender, stack, provider):
    first, second = make_template(push_title="Variant A"), make_template(push_title="Variant B")
    answer = sender.post("/admin/campaigns/campaign/add/", campaign_form(
        first, name="A/B", **{"variants-TOTAL_FORMS": "2", "variants-0-template": first.pk, "variants-0-share": "30",
                              "variants-1-template": second.pk, "variants-1-share": "70"}))
    assert answer.status_code == 302, answer.context["adminform"].form.errors if answer.context else answer
    campaign = Campaign.objects.get(name="A/B")
    assert [(v.template_id, v.share) for v in campaign.variants.all()] == [(first.pk, 30), (second.pk, 70)]
    sender.post("/admin/campaigns/campaign/", {"action": "launch_campaigns", "_selected_action": [campaign.pk]})
    parts = list(CampaignPart.objects.filter(run__campaign=campaign).order_by("variant_id"))
    assert [p.share for p in parts] == [[0, 30], [30, 100]] and all(p.state == PartState.RELEASED for p in parts)
    done = [completed(p.notification_id) for p in parts]
    assert [n.targeted for n in done] == [fans_in_share(0, 30), fans_in_share(30, 100)]
    assert sum(n.targeted for n in done) == 3000
    reachable, _ = expected_counts("test-fans")
    stats = provider.stats()
    assert sum(n.sent for n in done) == reachable == stats["unique"] and stats["duplicates"] == 0
    with connection.cursor() as cursor:  # every recipient got exactly one variant
        cursor.execute("SELECT count(DISTINCT recipient_id), count(*) FROM delivery_delivery"
                       " WHERE id BETWEEN %s AND %s OR id BETWEEN %s AND %s",
                       [*Delivery.key_range(done[0].pk), *Delivery.key_range(done[1].pk)])
        assert cursor.fetchone() == (3000, 3000)
    assert Notification.objects.get(pk=done[0].pk).template_id == first.pk
    wait_until(lambda: Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.COMPLETED, timeout=10,
               message="the campaign to complete")
    results = sender.get(f"/admin/campaigns/campaign/{campaign.pk}/results/").json()
    assert [(v["share"], v["sent"], v["failed"], v["skipped"]) for v in results["variants"]] == [
        (p.share, n.sent, n.failed, n.skipped) for p, n in zip(parts, done, strict=True)]
    assert "Variant" in results["html"] and "campaign-variants" in results["html"]
    listing = sender.get("/admin/campaigns/campaign/").content.decode()
    assert f"{sum(n.sent for n in done):,} / " in listing  # the list sums the variants
    page = sender.get(f"/admin/campaigns/campaign/{campaign.pk}/change/")
    assert page.status_code == 200 and b"A/B variant" in page.content


def test_bad_local_time_and_variant_input_is_refused_at_the_field(marketer):
    first, second = make_template(push_title="A"), make_template(push_title="B")

    def errors(**overrides) -> tuple[dict, list]:
        answer = marketer.post("/admin/campaigns/campaign/add/", campaign_form(first, **overrides))
        assert answer.status_code == 200, "an invalid campaign was saved"
        variants = next(f for f in answer.context["inline_admin_formsets"] if f.formset.prefix == "variants")
        return answer.context["adminform"].form.errors, [form.errors for form in variants.formset.forms]

    form, _ = errors(schedule_kind="local", local_date="2099-01-01")
    assert "time of day" in form["local_time"][0]
    form, _ = errors(schedule_kind="local", local_time="09:00")
    assert "day" in form["local_date"][0]
    form, _ = errors(schedule_kind="local", local_date="2001-01-01", local_time="09:00")
    assert "passed in every timezone" in form["local_date"][0]
    both = {"variants-TOTAL_FORMS": "2", "variants-0-template": first.pk, "variants-1-template": second.pk}
    _, variants = errors(**both, **{"variants-0-share": "50", "variants-1-share": "40"})
    assert all("add up to 90%" in v["share"][0] for v in variants)
    _, variants = errors(**{"variants-TOTAL_FORMS": "1", "variants-0-template": first.pk, "variants-0-share": "99"})
    assert "two or more" in variants[0]["template"][0]
    _, variants = errors(**both, **{"variants-0-share": "0", "variants-1-share": "100"})
    assert variants[0]["share"] and variants[1]["share"]  # each share is 1..99
    needy = make_template(push_title="{{ scorer }} scored")
    _, variants = errors(**{**both, "variants-1-template": needy.pk, "variants-0-share": "50",
                            "variants-1-share": "50"})
    assert "scorer" in variants[1]["template"][0]
    assert not Campaign.objects.filter(name="Derby day").exists()


def test_a_slice_of_every_audience_kind_keeps_only_its_timezones_and_share(fans):
    from apps.audience.models import Recipient, Segment
    from apps.campaigns.models import CampaignMember
    from apps.delivery.audience_stream import stream_audience
    from apps.delivery.requests import RequestError, parse_request
    from apps.preferences.models import Category

    category = Category.objects.get(slug="goal-alerts")
    segment = Segment.objects.create(name="english", filters={"locale": "en"})
    upload = Campaign.objects.create(name="upload", category=category, template=make_template(push_title="x"),
                                     channels=["push"], audience_kind="upload")
    CampaignMember.objects.bulk_create(CampaignMember(campaign=upload, recipient_id=r)
                                       for r in Recipient.objects.order_by("pk").values_list("pk", flat=True)[:700])
    in_slice = Recipient.objects.filter(timezone__in=["Europe/London", ""])
    some = list(Recipient.objects.order_by("pk").values_list("pk", flat=True)[:1200:7])  # ids do not start at 1
    bases = {"topic": ({"topic": "test-fans"}, Recipient.objects.filter(follows__topic__slug="test-fans")),
             "all": ({"all": True}, Recipient.objects.all()),
             "segment": ({"segment": segment.pk}, segment.recipients()),
             "campaign": ({"campaign": upload.pk}, Recipient.objects.filter(pk__in=upload.members.values("recipient"))),
             "recipients": ({"recipients": some}, Recipient.objects.filter(pk__in=some))}
    for kind, (audience, rows) in bases.items():
        request = parse_request({"category": "goal-alerts", "channels": ["push"], "body": "x", "audience": {
            "slice": {"of": audience, "timezones": ["Europe/London", ""], "share": [10, 60]}}})
        notification = Notification(category=category, audience=request.audience)
        streamed = sorted(i for page in stream_audience(notification, "push", page_size=97)
                          for i in page.sendable + page.inactive + page.opted_out)
        expected = sorted(r for r in rows.filter(pk__in=in_slice.values("pk")).values_list("pk", flat=True)
                          if 10 <= r % 100 < 60)
        assert streamed == expected and expected, kind
    for bad, field in [({"of": {"slice": {"of": {"all": True}}}}, "audience"),
                       ({"of": {"all": True}, "share": [60, 10]}, "audience.slice.share"),
                       ({"of": {"all": True}, "timezones": "UTC"}, "audience.slice.timezones"),
                       ({"of": {"all": True}, "extra": 1}, "audience.slice")]:
        with pytest.raises(RequestError) as refused:
            parse_request({"category": "goal-alerts", "channels": ["push"], "body": "x", "audience": {"slice": bad}})
        assert refused.value.field == field, bad
