"""The marketer's admin: templates with validation and preview; campaigns with audience, schedule,
test send, launch (with a confirmation above a size), pause/resume/cancel, live progress and audit."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from apps.audience.models import Recipient
from apps.preferences.models import Channel

from . import service, template_checks
from .models import AudienceKind, Campaign, CampaignEvent, CampaignStatus, ScheduleKind, Template


@admin.register(Template)
class TemplateAdmin(admin.ModelAdmin):
    list_display = ("name", "push_title", "email_subject", "updated_at")
    search_fields = ("name", "push_title", "email_subject")
    readonly_fields = ("sms_info", "preview")

    @admin.display(description="SMS length")
    def sms_info(self, obj: Template) -> str:
        length, segments, encoding = template_checks.sms_segments(obj.sms_text or "")
        return f"{length} characters, {segments} segment(s), {encoding} (with the sample values: see preview)"

    @admin.display(description="Preview")
    def preview(self, obj: Template) -> str:
        if not obj.pk:
            return "Save the template to preview it."
        url = reverse("admin:campaigns_template_preview", args=[obj.pk])
        return format_html('<a href="{}">Preview with the sample values</a>, or for a user: '
                           '<form method="get" action="{}" style="display:inline">'
                           '<input name="recipient" placeholder="user id (external id)"> '
                           '<button type="submit">Preview</button></form>', url, url)

    def get_urls(self):  # noqa: ANN201
        return [path("<int:pk>/preview/", self.admin_site.admin_view(self.preview_view),
                     name="campaigns_template_preview"), *super().get_urls()]

    def preview_view(self, request: HttpRequest, pk: int) -> TemplateResponse:
        template = get_object_or_404(Template, pk=pk)
        if not self.has_view_permission(request, template):
            raise PermissionDenied
        sample, note = dict(template_checks.SAMPLE_RECIPIENT), "a sample recipient"
        external_id = request.GET.get("recipient", "").strip()
        if external_id:
            recipient = Recipient.objects.filter(external_id=external_id).first()
            if recipient is None:
                note = f"no user {external_id!r}: showing a sample recipient"
            else:
                sample = {"name": recipient.name, "external_id": recipient.external_id, "locale": recipient.locale}
                note = f"user {external_id}"
        shown = template_checks.preview(template, dict(template.sample_context or {}), sample)
        length, segments, encoding = template_checks.sms_segments(shown["sms_text"])
        return TemplateResponse(request, "admin/campaigns/template_preview.html", {
            **self.admin_site.each_context(request), "title": f"Preview of {template}", "template_obj": template,
            "shown": shown, "note": note, "sms": f"{length} characters, {segments} segment(s), {encoding}"})


class CampaignForm(forms.ModelForm):
    channels = forms.MultipleChoiceField(choices=Channel.choices, widget=forms.CheckboxSelectMultiple)
    member_csv = forms.FileField(required=False, label="User ids (CSV)",
                                 help_text="For an uploaded list: one user id (external id) per line, first column.")

    class Meta:
        model = Campaign
        fields = ["name", "category", "template", "channels", "context", "audience_kind", "topic", "segment",
                  "member_csv", "schedule_kind", "send_at", "crontab", "crontab_timezone"]

    def clean(self) -> dict:
        data = super().clean()
        kind = data.get("audience_kind")
        if kind == AudienceKind.TOPIC and not data.get("topic"):
            self.add_error("topic", "Choose the topic whose followers get this campaign.")
        if kind == AudienceKind.SEGMENT and not data.get("segment"):
            self.add_error("segment", "Choose a segment.")
        self.members = None
        if data.get("member_csv"):
            self.members, self.rejected = service.parse_member_csv(data["member_csv"].read())
            if not self.members:
                self.add_error("member_csv", f"No line matched a user: {len(self.rejected)} line(s) rejected.")
        if kind == AudienceKind.UPLOAD and self.members is None and not (self.instance.pk and
                                                                         self.instance.members.exists()):
            self.add_error("member_csv", "Upload the CSV of user ids.")
        if not self.errors and kind in (AudienceKind.TOPIC, AudienceKind.SEGMENT, AudienceKind.ALL):
            probe = Campaign(audience_kind=kind, topic=data.get("topic"), segment=data.get("segment"))
            if service.estimate_audience(probe) == 0:
                self.add_error("audience_kind", "This audience is empty: nobody would get the campaign.")
        schedule = data.get("schedule_kind")
        if schedule == ScheduleKind.AT:
            if not data.get("send_at"):
                self.add_error("send_at", "Give the date and time to send at.")
            elif data["send_at"] <= timezone.now():
                self.add_error("send_at", "This time is in the past.")
        if schedule == ScheduleKind.RECURRING:
            try:
                service.parse_crontab(data.get("crontab", ""), data.get("crontab_timezone") or "UTC")
            except service.CampaignError as exc:
                self.add_error("crontab", str(exc))
        return data


class CampaignEventInline(admin.TabularInline):
    model = CampaignEvent
    extra = 0
    can_delete = False
    fields = ("at", "user", "action", "detail")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        return False


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    form = CampaignForm
    list_display = ("name", "category", "channels", "audience_kind", "schedule_kind", "status", "created_by",
                    "created_at")
    list_filter = ("status", "category", "schedule_kind")
    search_fields = ("name",)
    autocomplete_fields = ("topic", "segment", "template")
    readonly_fields = ("status", "created_by", "audience_estimate", "progress")
    inlines = [CampaignEventInline]
    actions = ["send_test_to_me", "schedule_campaigns", "launch_campaigns", "pause_campaigns", "resume_campaigns",
               "cancel_campaigns"]

    def get_fieldsets(self, request, obj=None):  # noqa: ANN001, ANN201
        message = ("Message", {"fields": ["name", "category", "template", "channels", "context"]})
        audience = ("Audience", {"fields": ["audience_kind", "topic", "segment", "member_csv", "audience_estimate"]})
        schedule = ("Schedule", {"fields": ["schedule_kind", "send_at", "crontab", "crontab_timezone"]})
        if obj is None:
            return [message, audience, schedule]
        return [("Live progress", {"fields": ["status", "progress", "created_by"]}), message, audience, schedule]

    def save_model(self, request, obj, form, change):  # noqa: ANN001
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
        service.record_event(obj, request.user, "changed" if change else "created")
        if form.members is not None:
            service.replace_members(obj, form.members)
            detail = f"{len(form.members)} user(s) matched, {len(form.rejected)} line(s) rejected"
            service.record_event(obj, request.user, "list uploaded", detail)
            rejected = ", ".join(f"line {n}: {v[:40]!r}" for n, v in form.rejected[:20])
            level = messages.WARNING if form.rejected else messages.SUCCESS
            self.message_user(request, f"{detail}{': ' + rejected if rejected else ''}"
                                       f"{' …' if len(form.rejected) > 20 else ''}", level)

    @admin.display(description="Audience (estimate, before preferences)")
    def audience_estimate(self, obj: Campaign) -> str:
        return f"{service.estimate_audience(obj):,} users" if obj.pk else "—"

    @admin.display(description="Progress")
    def progress(self, obj: Campaign) -> str:
        if not obj.pk:
            return "—"
        url = reverse("admin:campaigns_campaign_progress", args=[obj.pk])
        return format_html(
            '<div id="campaign-progress" data-url="{}">'
            '<progress id="campaign-progress-bar" max="1" value="0" style="width:28em"></progress> '
            '<span id="campaign-progress-text">…</span></div>'
            '<script>(function () {{'
            ' const box = document.getElementById("campaign-progress");'
            ' async function tick() {{'
            '  try {{ const r = await fetch(box.dataset.url, {{credentials: "same-origin"}}); const s = await r.json();'
            '   const bar = document.getElementById("campaign-progress-bar"); bar.max = Math.max(s.targeted, 1);'
            '   bar.value = s.done;'
            '   document.getElementById("campaign-progress-text").textContent ='
            '    `${{s.status}}: ${{s.done.toLocaleString()}} of ${{s.targeted.toLocaleString()}} — sent ${{s.sent}},'
            ' failed ${{s.failed}}, throttled ${{s.throttled}}, skipped ${{s.skipped}}, ${{s.rate}}/s`;'
            '  }} catch (e) {{}}'
            '  setTimeout(tick, 1000); }}'
            ' tick(); }})();</script>', url)

    def get_urls(self):  # noqa: ANN201
        return [path("<int:pk>/progress/", self.admin_site.admin_view(self.progress_view),
                     name="campaigns_campaign_progress"), *super().get_urls()]

    def progress_view(self, request: HttpRequest, pk: int) -> JsonResponse:
        """Counts the pipeline keeps in Redis for the latest run (never a COUNT(*) over deliveries)."""
        from apps.delivery import progress

        campaign = get_object_or_404(Campaign, pk=pk)
        if not self.has_view_permission(request, campaign):
            raise PermissionDenied
        run = campaign.runs.order_by("-launched_at").select_related("notification").first()
        counts = progress.read(run.notification_id) if run and run.notification_id else {}
        done = sum(int(counts.get(k, 0)) for k in progress.TERMINAL)
        elapsed = counts.get("t_last_recorded", 0) - counts.get("t_first_send", 0)
        return JsonResponse({
            "status": campaign.status, "targeted": int(counts.get("targeted", 0)), "done": done,
            "sent": int(counts.get("sent", 0)), "failed": int(counts.get("failed", 0) + counts.get("dead_lettered", 0)),
            "skipped": int(counts.get("skipped", 0)), "throttled": int(counts.get("throttled", 0)),
            "rate": round(counts.get("sent", 0) / elapsed) if elapsed > 0 else 0,
        })

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
        self._each(request, queryset, "test sent to you", lambda c: service.send_test(c, request.user))

    @admin.action(description="Schedule", permissions=["change"])
    def schedule_campaigns(self, request, queryset) -> None:  # noqa: ANN001
        self._each(request, queryset, "scheduled", lambda c: service.schedule(c, request.user))

    @admin.action(description="Launch now", permissions=["launch"])
    def launch_campaigns(self, request, queryset):  # noqa: ANN001, ANN201
        sizes = [(campaign, service.estimate_audience(campaign)) for campaign in queryset]
        threshold = settings.CAMPAIGN_CONFIRM_ABOVE
        if any(size > threshold for _, size in sizes) and request.POST.get("confirm") != "yes":
            return TemplateResponse(request, "admin/campaigns/confirm_launch.html", {
                **self.admin_site.each_context(request), "title": "Launch these campaigns?", "sizes": sizes,
                "threshold": threshold, "ids": [c.pk for c, _ in sizes],
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME})

        def launch(campaign: Campaign) -> None:
            if campaign.status not in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED):
                raise service.CampaignError(f"a {campaign.status} campaign cannot be launched")
            service.launch(campaign.pk, request.user)

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
