import secrets

from django import forms
from django.contrib import admin, messages

from .models import AUDIENCE_KINDS, ApiKey, ApiScope, DeadLetter, Delivery, Erasure, EventSource, Notification


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("id", "category", "channels", "source", "status", "targeted", "sent", "failed", "skipped",
                    "created_at", "completed_at")
    list_filter = ("status", "source", "category")
    search_fields = ("id__exact", "idempotency_key__exact")
    raw_id_fields = ("template",)
    date_hierarchy = "created_at"
    readonly_fields = ("targeted", "sent", "failed", "skipped", "dispatched_at", "completed_at", "created_at",
                       "live_status")

    @admin.display(description="live status (targeted, sent, failed, throttled, skipped, pending, times, rate)")
    def live_status(self, notification: Notification) -> str:
        from .status import status_of

        status = status_of(notification)
        return ", ".join(f"{k}: {status[k]}" for k in ("targeted", "sent", "failed", "throttled", "skipped", "pending",
                                                        "first_send_at", "last_send_at", "recipients_per_s"))


class NotificationIdFilter(admin.SimpleListFilter):
    """Filters by the packed key range, which the primary key index serves."""

    title = "notification"
    parameter_name = "notification"

    def lookups(self, request, model_admin):  # noqa: ANN001
        return [(n.pk, f"#{n.pk}") for n in Notification.objects.order_by("-pk")[:10]]

    def queryset(self, request, queryset):  # noqa: ANN001
        if self.value() and self.value().isdigit():
            low, high = Delivery.key_range(int(self.value()))
            return queryset.filter(id__range=(low, high))
        return queryset


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ("id", "notification_id", "recipient_id", "channel", "status", "reason", "attempts", "updated_at")
    list_filter = (NotificationIdFilter, "status", "channel")
    search_fields = ("recipient__external_id__exact",)
    raw_id_fields = ("notification", "recipient")
    show_full_result_count = False
    ordering = ("-id",)


@admin.register(DeadLetter)
class DeadLetterAdmin(admin.ModelAdmin):
    list_display = ("id", "topic", "reason", "reason_kind", "notification_id", "channel", "recipient_count",
                    "payload_size", "created_at", "replayed_at")
    list_filter = ("reason_kind", "topic", "channel", ("replayed_at", admin.EmptyFieldListFilter))
    search_fields = ("notification_id__exact",)
    fields = ("topic", "partition", "offset", "reason", "reason_kind", "notification_id", "channel", "recipient_ids",
              "headers", "payload", "payload_encoding", "payload_size", "created_at", "replayed_at")
    actions = ["replay_selected"]

    def get_readonly_fields(self, request, letter=None):  # noqa: ANN001, ANN201
        """Everything but a rejected event's payload, which an operator may fix before replaying it."""
        from apps.streaming.topics import EVENTS, topic_name

        editable = letter is not None and letter.replayed_at is None and letter.topic == topic_name(EVENTS) \
            and letter.payload_encoding == DeadLetter.Encoding.TEXT and self.has_replay_permission(request)
        return [f for f in self.fields if not (editable and f == "payload")]

    @admin.display(description="recipients")
    def recipient_count(self, letter: DeadLetter) -> int:
        return len(letter.recipient_ids)

    def has_add_permission(self, request) -> bool:  # noqa: ANN001
        return False

    def has_replay_permission(self, request) -> bool:  # noqa: ANN001
        return request.user.has_perm("delivery.replay_deadletter")

    @admin.action(description="Replay the selected dead letters (never resends to a recipient already sent)",
                  permissions=["replay"])
    def replay_selected(self, request, queryset) -> None:  # noqa: ANN001
        from .replay import NotReplayable, replay

        queued = 0
        for letter in queryset.order_by("pk"):
            try:
                queued += replay(letter)
            except NotReplayable as exc:
                self.message_user(request, str(exc), messages.WARNING)
        self.message_user(request, f"{queued} recipient(s) queued again.", messages.SUCCESS)


def audience_kinds_field() -> forms.MultipleChoiceField:
    """The audience-kind allow-list that API keys and event sources share (SendLimits)."""
    return forms.MultipleChoiceField(choices=[(k, k) for k in AUDIENCE_KINDS], widget=forms.CheckboxSelectMultiple,
                                     required=False, help_text="None ticked: any kind of audience.")


class ApiKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(choices=ApiScope.choices, widget=forms.CheckboxSelectMultiple, required=False)
    allowed_audience_kinds = audience_kinds_field()

    class Meta:
        model = ApiKey
        fields = ("name", "owner", "is_active", "scopes", "allowed_categories", "allowed_audience_kinds",
                  "max_audience", "rate_per_minute")


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Adding a key makes its secret and shows it once, on the page after saving; only its hash is kept."""

    form = ApiKeyForm
    list_display = ("name", "owner", "is_active", "scopes", "max_audience", "created_at")
    search_fields = ("name", "owner")
    filter_horizontal = ("allowed_categories",)

    def save_model(self, request, api_key, form, change) -> None:  # noqa: ANN001
        token = None
        if not change:
            token = secrets.token_urlsafe(32)
            api_key.token_sha256 = ApiKey.hash(token)
        super().save_model(request, api_key, form, change)
        if token:
            self.message_user(request, f"The secret of API key {api_key.name!r} is {token} . Copy it now: it is "
                                       "not kept and cannot be shown again.", messages.WARNING)


class EventSourceForm(forms.ModelForm):
    allowed_audience_kinds = audience_kinds_field()

    class Meta:
        model = EventSource
        fields = ("name", "owner", "is_active", "allowed_categories", "allowed_audience_kinds", "max_audience",
                  "signing_key")
        widgets = {"signing_key": forms.PasswordInput(render_value=True)}


@admin.register(EventSource)
class EventSourceAdmin(admin.ModelAdmin):
    """The services that may publish raw events to notify.events, each held to its allow-lists like an API key."""

    form = EventSourceForm
    list_display = ("name", "owner", "is_active", "allowed_audience_kinds", "max_audience", "signed", "created_at")
    list_filter = ("is_active",)
    search_fields = ("name", "owner")
    filter_horizontal = ("allowed_categories",)

    @admin.display(boolean=True, description="signs its events")
    def signed(self, source: EventSource) -> bool:
        return bool(source.signing_key)


@admin.register(Erasure)
class ErasureAdmin(admin.ModelAdmin):
    """The erasure log: read-only, it is the proof that an erasure happened."""

    list_display = ("erased_at", "recipient_id", "requested_by", "deliveries_anonymised")
    search_fields = ("external_id_sha256",)
    readonly_fields = ("recipient_id", "external_id_sha256", "requested_by", "removed", "deliveries_anonymised",
                       "erased_at")

    def has_add_permission(self, request) -> bool:  # noqa: ANN001
        return False

    def has_change_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        return False

    def has_delete_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        return False
