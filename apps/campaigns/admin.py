"""The marketer's admin: campaigns with audience (estimated live), schedule, a preview beside the form,
test send with its real outcome, launch (with a confirmation above a size), pause/resume/cancel, live
status and progress, results and audit. Templates: apps/content/admin.py; the JSON parts: admin_views.py."""

from __future__ import annotations

import json

from django.conf import settings
from django.contrib import admin, messages
from django.db.models import OuterRef, Subquery
from django.http import HttpRequest, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from apps.content import template_checks
from apps.content.admin import preview_context
from apps.core import outages

from . import admin_views, service
from .admin_inlines import CampaignEventInline, CampaignVariantInline
from .forms import CampaignForm
from .models import Campaign, CampaignPart, CampaignRun, CampaignStatus, ScheduleKind
from .test_send import send_test


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    form = CampaignForm
    list_display = ("name", "status", "schedule", "audience_size", "sent_counts", "category", "channels",
                    "created_by")
    list_filter = ("status", "category", "schedule_kind")
    search_fields = ("name",)
    autocomplete_fields = ("topic", "segment", "template")
    readonly_fields = ("status_live", "created_by", "audience_estimate", "progress", "results")
    inlines = [CampaignVariantInline, CampaignEventInline]
    actions = ["send_test_to_me", "schedule_campaigns", "launch_campaigns", "pause_campaigns", "resume_campaigns",
               "cancel_campaigns"]

    class Media:
        css = {"all": ["campaigns/compose.css"]}
        js = ["campaigns/compose.js"]

    def get_fieldsets(self, request, obj=None):  # noqa: ANN001, ANN201
        editable = self.has_change_permission(request, obj) if obj else True
        message = ("Message", {"fields": ["name", "category", "template", "channels", "context"]})
        upload = ["member_csv"] if editable else []
        audience = ("Audience", {"fields": ["audience_kind", "topic", "segment", *upload, "audience_estimate"]})
        schedule = ("Schedule", {"fields": ["schedule_kind", "send_at", "crontab", "crontab_timezone", "local_date",
                                            "local_time"]})
        if obj is None:
            return [message, audience, schedule]
        live = ("Live progress", {"fields": ["status_live", "progress", "created_by"]})
        return [live, ("Results", {"fields": ["results"]}), message, audience, schedule]

    def get_queryset(self, request: HttpRequest):  # noqa: ANN201
        latest = CampaignRun.objects.filter(campaign=OuterRef("pk")).order_by("-launched_at")
        return super().get_queryset(request).select_related("category", "created_by").annotate(
            latest_notification=Subquery(latest.values("notification_id")[:1]),
            latest_run=Subquery(latest.values("pk")[:1]))

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):  # noqa: ANN001, ANN201
        extra = preview_context(reverse("admin:content_template_render"), "template,context,category")
        campaign = Campaign.objects.filter(pk=object_id).first() if object_id and object_id.isdigit() else None
        if campaign is not None:
            extra["preview_defaults"] = json.dumps({"template": campaign.template_id, "category": campaign.category_id,
                                                    "context": json.dumps(campaign.context or {})})
        return super().changeform_view(request, object_id, form_url, {**(extra_context or {}), **extra})

    def save_model(self, request, obj, form, change):  # noqa: ANN001
        from .members import replace_members

        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
        service.record_event(obj, request.user, "changed" if change else "created")
        if form.members is not None:
            replace_members(obj, form.members)
            detail = f"{len(form.members)} user(s) matched, {len(form.rejected)} line(s) rejected"
            service.record_event(obj, request.user, "list uploaded", detail)
            rejected = ", ".join(f"line {n}: {why}" for n, why in form.rejected[:20])
            level = messages.WARNING if form.rejected else messages.SUCCESS
            self.message_user(request, f"{detail}{': ' + rejected if rejected else ''}"
                                       f"{' …' if len(form.rejected) > 20 else ''}", level)

    def save_related(self, request, form, formsets, change):  # noqa: ANN001
        super().save_related(request, form, formsets, change)
        # beat would launch the edited campaign unasked: whoever may launch looks at it again and reschedules
        edited = form.has_changed() or any(formset.has_changed() for formset in formsets)
        if change and edited and service.unschedule(form.instance, request.user):
            self.message_user(request, f"{form.instance}: changed after it was scheduled, so it is no longer"
                                       " scheduled: schedule it again to send it.", messages.WARNING)

    # --- list columns and read-only fields ---

    @admin.display(description="Schedule", ordering="schedule_kind")
    def schedule(self, obj: Campaign) -> str:
        if obj.schedule_kind == ScheduleKind.AT:
            return f"once, {obj.send_at:%Y-%m-%d %H:%M %Z}" if obj.send_at else "once (no time)"
        if obj.schedule_kind == ScheduleKind.RECURRING:
            return f"{obj.crontab} ({obj.crontab_timezone or 'UTC'})"
        if obj.schedule_kind == ScheduleKind.LOCAL:
            return f"{obj.local_date} {obj.local_time:%H:%M} local time" if obj.local_time else "local (no time)"
        return "when launched"

    def _counts(self, obj: Campaign) -> dict:
        from apps.delivery import service as delivery

        notification_id = getattr(obj, "latest_notification", None)
        if notification_id:
            return delivery.live_counts(notification_id)
        run_id = getattr(obj, "latest_run", None)  # a split run: its parts' notifications, summed
        ids = CampaignPart.objects.filter(run_id=run_id).exclude(notification=None).values_list(
            "notification_id", flat=True) if run_id else []
        counts: dict = {}
        for one in map(delivery.live_counts, ids):
            for name, value in one.items():
                counts[name] = counts.get(name, 0) + value
        return counts

    @admin.display(description="Audience")
    def audience_size(self, obj: Campaign) -> str:
        targeted = self._counts(obj).get("targeted")
        return f"{int(targeted):,}" if targeted else f"~{service.cached_estimate(obj):,}"

    @admin.display(description="Sent / failed / skipped")
    def sent_counts(self, obj: Campaign) -> str:
        counts = self._counts(obj)
        if not counts:
            return "—"
        failed = int(counts.get("failed", 0)) + int(counts.get("dead_lettered", 0))
        return f"{int(counts.get('sent', 0)):,} / {failed:,} / {int(counts.get('skipped', 0)):,}"

    @admin.display(description="Status")
    def status_live(self, obj: Campaign) -> str:
        return format_html('<strong id="campaign-status" data-status="{}">{}</strong>', obj.status,
                           obj.get_status_display())

    @admin.display(description="Audience (estimate, before preferences)")
    def audience_estimate(self, obj: Campaign | None) -> str:
        url = reverse("admin:campaigns_campaign_estimate")
        text = f"{service.cached_estimate(obj):,} users" if obj and obj.pk else "…"
        return format_html('<span id="campaign-estimate" data-url="{}" data-campaign="{}">{}</span>', url,
                           obj.pk if obj and obj.pk else "", text)

    @admin.display(description="Progress")
    def progress(self, obj: Campaign) -> str:
        if not obj.pk:
            return "—"
        return format_html(
            '<div id="campaign-progress" data-url="{}">'
            '<progress id="campaign-progress-bar" max="1" value="0" style="width:28em"></progress> '
            '<span id="campaign-progress-text">…</span><div id="campaign-waves"></div></div>',
            reverse("admin:campaigns_campaign_progress", args=[obj.pk]))

    @admin.display(description="Per channel")
    def results(self, obj: Campaign) -> str:
        if not obj.pk:
            return "—"
        return format_html('<div id="campaign-results" data-url="{}">…</div>',
                           reverse("admin:campaigns_campaign_results", args=[obj.pk]))

    # --- pages ---

    def get_urls(self):  # noqa: ANN201
        wrap = self.admin_site.admin_view
        return [
            path("<int:pk>/progress/", wrap(lambda r, pk: admin_views.progress(self, r, pk)),
                 name="campaigns_campaign_progress"),
            path("<int:pk>/results/", wrap(lambda r, pk: admin_views.results(self, r, pk)),
                 name="campaigns_campaign_results"),
            path("<int:pk>/send-test/", wrap(self.send_test_view), name="campaigns_campaign_send_test"),
            path("estimate/", wrap(self.estimate_view), name="campaigns_campaign_estimate"),
            *super().get_urls()]

    def estimate_view(self, request: HttpRequest) -> JsonResponse:
        if request.method != "POST" or not self.has_view_permission(request):
            return JsonResponse({"error": "not allowed"}, status=403)
        return admin_views.estimate(request)

    def send_test_view(self, request: HttpRequest, pk: int) -> HttpResponseRedirect:
        campaign = get_object_or_404(Campaign, pk=pk)
        if request.method == "POST" and self.has_change_permission(request, campaign):
            self._send_test(request, campaign, request.POST.get("locale", "").strip())
        return HttpResponseRedirect(reverse("admin:campaigns_campaign_change", args=[pk]))

    def _send_test(self, request: HttpRequest, campaign: Campaign, locale: str = "") -> None:
        try:
            outcome = send_test(campaign, request.user, locale=locale)
        except ValueError as exc:  # a locale that is not one
            self.message_user(request, f"{campaign}: {exc}", messages.ERROR)
            return
        level = messages.SUCCESS if outcome.delivered else messages.WARNING
        if any(state in ("failed", "dead_lettered") for state, _ in outcome.channels.values()):
            level = messages.ERROR
        self.message_user(request, f"{campaign}: test to you: {outcome.summary}.", level)

    # --- actions ---

    def has_launch_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("campaigns.launch_campaign")

    def _each(self, request: HttpRequest, queryset, verb: str, do) -> None:  # noqa: ANN001
        for campaign in queryset:
            try:
                do(campaign)
                self.message_user(request, f"{campaign}: {verb}.", messages.SUCCESS)
            except service.CampaignError as exc:
                self.message_user(request, f"{campaign}: {exc}", messages.ERROR)

    @admin.action(description="Send a test to me", permissions=["change"])
    def send_test_to_me(self, request, queryset) -> None:  # noqa: ANN001
        for campaign in queryset:
            self._send_test(request, campaign)

    def _confirm_size(self, request: HttpRequest, queryset, action: str, verb: str):  # noqa: ANN001, ANN202
        """Above the size threshold, a page that asks first (the same for launch and schedule)."""
        sizes = [(campaign, service.estimate_audience(campaign)) for campaign in queryset]
        threshold = settings.CAMPAIGN_CONFIRM_ABOVE
        if not any(size > threshold for _, size in sizes) or request.POST.get("confirm") == "yes":
            return None
        return TemplateResponse(request, "admin/campaigns/confirm_launch.html", {
            **self.admin_site.each_context(request), "title": f"{verb.capitalize()} these campaigns?",
            "sizes": sizes, "threshold": threshold, "ids": [c.pk for c, _ in sizes], "action": action,
            "verb": verb, "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME})

    # Scheduling needs the launch permission: beat launches what was scheduled, with nobody to ask then.
    @admin.action(description="Schedule", permissions=["launch"])
    def schedule_campaigns(self, request, queryset):  # noqa: ANN001, ANN201
        asked = self._confirm_size(request, queryset, "schedule_campaigns", "schedule")
        if asked is not None:
            return asked
        self._each(request, queryset, "scheduled", lambda c: service.schedule(c, request.user))
        return None

    @admin.action(description="Launch now", permissions=["launch"])
    def launch_campaigns(self, request, queryset):  # noqa: ANN001, ANN201
        asked = self._confirm_size(request, queryset, "launch_campaigns", "launch")
        if asked is not None:
            return asked

        def launch(campaign: Campaign) -> None:
            if campaign.status not in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED):
                raise service.CampaignError(f"a {campaign.status} campaign cannot be launched")
            problems = template_checks.context_errors(campaign.template, campaign.context or {}, campaign.channels)
            if problems:
                raise service.CampaignError("; ".join(problems))
            try:
                service.launch(campaign.pk, request.user)
            except outages.HAND_OFF_OUTAGES as exc:
                outages.forget_broken_connections()
                raise service.CampaignError(
                    f"the launch met an outage ({type(exc).__name__}); what was recorded stands and is sent once:"
                    " launch again when it is over (waves already planned are released by the sweeper)") from None

        self._each(request, queryset, "launched", launch)
        return None

    @admin.action(description="Pause", permissions=["launch"])
    def pause_campaigns(self, request, queryset) -> None:  # noqa: ANN001
        self._each(request, queryset, "paused", lambda c: service.pause(c, request.user))

    @admin.action(description="Resume", permissions=["launch"])
    def resume_campaigns(self, request, queryset) -> None:  # noqa: ANN001
        self._each(request, queryset, "resumed", lambda c: service.resume(c, request.user))

    @admin.action(description="Cancel", permissions=["launch"])
    def cancel_campaigns(self, request, queryset) -> None:  # noqa: ANN001
        self._each(request, queryset, "cancelled", lambda c: service.cancel(c, request.user))
