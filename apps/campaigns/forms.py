"""The campaign form: everything a marketer types is checked at its field, with a message."""

from __future__ import annotations

from django import forms
from django.utils import timezone

from apps.content import template_checks
from apps.core.channels import Channel

from . import parts, service
from .members import MemberListError, parse_member_csv
from .models import AudienceKind, Campaign, ScheduleKind


class CampaignForm(forms.ModelForm):
    channels = forms.MultipleChoiceField(choices=Channel.choices, widget=forms.CheckboxSelectMultiple)
    member_csv = forms.FileField(required=False, label="User ids (CSV)",
                                 help_text="For an uploaded list: one user id (external id) per line, first column.")

    class Meta:
        model = Campaign
        fields = ["name", "category", "template", "channels", "context", "audience_kind", "topic", "segment",
                  "member_csv", "schedule_kind", "send_at", "crontab", "crontab_timezone", "local_date", "local_time"]

    def clean_context(self) -> dict:
        context = self.cleaned_data.get("context")
        if context in (None, ""):
            return {}
        if not isinstance(context, dict):
            raise forms.ValidationError('Must be a JSON object of name: value, e.g. {"discount": 20}.')
        return context

    def clean(self) -> dict:
        data = super().clean()
        self._check_context(data)
        self._check_audience(data)
        self._check_schedule(data)
        return data

    def _check_context(self, data: dict) -> None:
        template, channels = data.get("template"), data.get("channels")
        if template is None or not channels or "context" in self.errors:
            return
        for problem in template_checks.context_errors(template, data.get("context") or {}, channels):
            self.add_error("context", problem[0].upper() + problem[1:] + ".")

    def _check_audience(self, data: dict) -> None:
        kind = data.get("audience_kind")
        if kind == AudienceKind.TOPIC and not data.get("topic"):
            self.add_error("topic", "Choose the topic whose followers get this campaign.")
        if kind == AudienceKind.SEGMENT and not data.get("segment"):
            self.add_error("segment", "Choose a segment.")
        self.members, self.rejected = None, []
        if data.get("member_csv"):
            try:
                self.members, self.rejected = parse_member_csv(data["member_csv"].read())
            except MemberListError as exc:
                self.add_error("member_csv", str(exc))
                return
            if not self.members:
                self.add_error("member_csv", f"No line matched a user: {len(self.rejected)} line(s) rejected.")
        if kind == AudienceKind.UPLOAD and self.members is None and not (self.instance.pk and
                                                                         self.instance.members.exists()):
            self.add_error("member_csv", "Upload the CSV of user ids.")
        if not self.errors and kind in (AudienceKind.TOPIC, AudienceKind.SEGMENT, AudienceKind.ALL):
            probe = Campaign(audience_kind=kind, topic=data.get("topic"), segment=data.get("segment"))
            if service.estimate_audience(probe) == 0:
                self.add_error("audience_kind", "This audience is empty: nobody would get the campaign.")

    def _check_schedule(self, data: dict) -> None:
        schedule = data.get("schedule_kind")
        if schedule == ScheduleKind.AT:
            if not data.get("send_at"):
                self.add_error("send_at", "Give the date and time to send at.")
            elif data["send_at"] <= timezone.now():
                self.add_error("send_at", "This time is in the past.")
        if schedule == ScheduleKind.LOCAL:
            if not data.get("local_time"):
                self.add_error("local_time", "Give the time of day to send at in each recipient's timezone.")
            if not data.get("local_date"):
                self.add_error("local_date", "Give the day to send on.")
            elif data.get("local_time"):
                probe = Campaign(local_date=data["local_date"], local_time=data["local_time"])
                if parts.local_due(probe, "Etc/GMT+12") <= timezone.now():  # the last timezone on Earth
                    self.add_error("local_date", "This time has passed in every timezone.")
        if schedule == ScheduleKind.RECURRING:
            try:
                service.parse_crontab(data.get("crontab", ""), data.get("crontab_timezone") or "UTC")
            except service.CampaignError as exc:
                self.add_error("crontab", str(exc))


class VariantFormSet(forms.BaseInlineFormSet):
    """A/B variants: none, or two or more whose shares add up to 100; refused at the share field otherwise."""

    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return
        kept = [f for f in self.forms if f.cleaned_data and not f.cleaned_data.get("DELETE")]
        if not kept:
            return
        total = sum(f.cleaned_data.get("share") or 0 for f in kept)
        if len(kept) < 2:
            kept[0].add_error("template", "An A/B test needs two or more variants (or none).")
        elif total != 100:
            for form in kept:
                form.add_error("share", f"The shares add up to {total}%: they must add up to 100%.")
        context = self.instance.context if isinstance(self.instance.context, dict) else {}
        for form in kept:
            template = form.cleaned_data.get("template")
            for problem in template_checks.context_errors(template, context, self.instance.channels or []) \
                    if template else []:
                form.add_error("template", problem[0].upper() + problem[1:] + ".")
