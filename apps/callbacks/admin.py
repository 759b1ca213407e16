"""Callback endpoints and their delivery log in the admin. The log is read-only; no secret is ever shown
(it was shown once, to whoever created the endpoint through the API)."""

from django.contrib import admin

from .models import CallbackAttempt, CallbackEndpoint, CallbackMessage


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        return False

    def has_change_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        return False


@admin.register(CallbackEndpoint)
class CallbackEndpointAdmin(admin.ModelAdmin):
    list_display = ("id", "api_key", "url", "event_types", "is_active", "created_at")
    list_filter = ("is_active",)
    fields = ("api_key", "url", "event_types", "description", "is_active", "created_at")
    readonly_fields = ("api_key", "url", "created_at")  # a new endpoint (and its secret) comes from the API

    def has_add_permission(self, request) -> bool:  # noqa: ANN001
        return False


class AttemptInline(admin.TabularInline):
    model = CallbackAttempt
    fields = readonly_fields = ("number", "status_code", "latency_ms", "error", "attempted_at")
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        return False


@admin.register(CallbackMessage)
class CallbackMessageAdmin(ReadOnly):
    list_display = ("id", "endpoint", "event_type", "notification_id", "status", "attempts", "next_attempt_at",
                    "last_error", "created_at", "delivered_at")
    list_filter = ("status", "event_type")
    search_fields = ("id__exact", "notification_id__exact")
    show_full_result_count = False
    inlines = [AttemptInline]


@admin.register(CallbackAttempt)
class CallbackAttemptAdmin(ReadOnly):
    list_display = ("message", "number", "status_code", "latency_ms", "error", "attempted_at")
    list_filter = ("status_code",)
    search_fields = ("message__id__exact",)
    list_select_related = ("message",)
    show_full_result_count = False
