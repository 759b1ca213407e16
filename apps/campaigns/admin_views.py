"""The campaign pages' live parts, as JSON for apps/campaigns/static/campaigns/compose.js: the
audience estimate while the form is edited, the preview beside the form, progress and results."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string

from apps.audience.models import Segment, Topic

from . import service
from .members import MemberListError, parse_member_csv
from .models import AudienceKind, Campaign, CampaignStatus
from .results import notification_results, variant_results


def _pk(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def estimate(request: HttpRequest) -> JsonResponse:
    """The audience the form describes now, saved or not; an uploaded CSV is counted as it would match."""
    kind = request.POST.get("audience_kind", AudienceKind.TOPIC)
    campaign = Campaign(pk=_pk(request.POST.get("campaign")), audience_kind=kind,
                        topic=Topic.objects.filter(pk=_pk(request.POST.get("topic"))).first(),
                        segment=Segment.objects.filter(pk=_pk(request.POST.get("segment"))).first())
    if kind == AudienceKind.TOPIC and campaign.topic is None:
        return JsonResponse({"users": None, "text": "choose a topic"})
    if kind == AudienceKind.SEGMENT and campaign.segment is None:
        return JsonResponse({"users": None, "text": "choose a segment"})
    upload = request.FILES.get("member_csv")
    if kind == AudienceKind.UPLOAD and upload is not None:
        try:
            members, rejected = parse_member_csv(upload.read())
        except MemberListError as exc:
            return JsonResponse({"users": None, "text": str(exc)})
        return JsonResponse({"users": len(members),
                             "text": f"{len(members):,} users matched, {len(rejected):,} line(s) rejected"})
    if kind == AudienceKind.UPLOAD and not campaign.pk:
        return JsonResponse({"users": None, "text": "upload the CSV of user ids"})
    users = service.estimate_audience(campaign)
    return JsonResponse({"users": users, "text": f"{users:,} users"})


def _campaign(model_admin, request: HttpRequest, pk: int) -> Campaign:  # noqa: ANN001
    campaign = get_object_or_404(Campaign, pk=pk)
    if not model_admin.has_view_permission(request, campaign):
        raise PermissionDenied
    return campaign


def progress(model_admin, request: HttpRequest, pk: int) -> JsonResponse:  # noqa: ANN001
    """Counts the pipeline keeps in Redis for the latest run (never a COUNT(*) over deliveries), summed over a
    split run's notifications; a local-time run's waves too."""
    from apps.delivery import service as delivery

    campaign = _campaign(model_admin, request, pk)
    run = campaign.runs.order_by("-launched_at").first()
    split = list(run.parts.select_related("notification")) if run else []
    ids = [run.notification_id] if run and run.notification_id else [p.notification_id for p in split]
    per_id = {nid: delivery.live_counts(nid) for nid in ids if nid}
    counts: dict = {}
    for one in per_id.values():
        for name, value in one.items():
            if name in ("t_first_send", "t_last_recorded"):
                counts[name] = (min if name == "t_first_send" else max)(counts.get(name, value), value)
            else:
                counts[name] = counts.get(name, 0) + value
    done = sum(int(counts.get(k, 0)) for k in delivery.TERMINAL_COUNTS)
    elapsed = counts.get("t_last_recorded", 0) - counts.get("t_first_send", 0)
    waves = [{"timezone": p.timezone, "variant": str(p.variant) if p.variant_id else "", "due": p.due_at.isoformat(),
              "due_text": f"{p.due_at:%Y-%m-%d %H:%M}",
              "status": p.notification.status if p.notification_id else p.state,
              "sent": int(per_id.get(p.notification_id, {}).get("sent", 0))} for p in split if p.timezone]
    return JsonResponse({
        "status": campaign.status, "status_label": CampaignStatus(campaign.status).label,
        "targeted": int(counts.get("targeted", 0)), "done": done,
        "sent": int(counts.get("sent", 0)), "failed": int(counts.get("failed", 0) + counts.get("dead_lettered", 0)),
        "skipped": int(counts.get("skipped", 0)), "throttled": int(counts.get("throttled", 0)),
        "rate": round(counts.get("sent", 0) / elapsed) if elapsed > 0 else 0, "waves": waves,
        "waves_html": render_to_string("admin/campaigns/waves.html", {"waves": waves}) if waves else "",
    })


def results(model_admin, request: HttpRequest, pk: int) -> JsonResponse:  # noqa: ANN001
    campaign = _campaign(model_admin, request, pk)
    runs = []
    latest = campaign.runs.exclude(notification=None).order_by("-launched_at")
    for occurrence, notification_id, status in latest.values_list("occurrence", "notification_id",
                                                                  "notification__status")[:5]:
        complete = status == "completed"
        runs.append({"occurrence": occurrence, "notification": notification_id, "complete": complete,
                     "channels": notification_results(notification_id, complete)})
    split = campaign.runs.filter(notification=None).order_by("-launched_at").first()
    variants = variant_results(split) if split else []
    html = render_to_string("admin/campaigns/results_panel.html", {"runs": runs, "variants": variants,
                                                                    "split": split})
    return JsonResponse({"runs": runs, "variants": variants, "html": html})
