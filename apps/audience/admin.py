from django.contrib import admin

from .models import Device, Follow, Recipient, Segment, Topic


class DeviceInline(admin.TabularInline):
    model = Device
    extra = 0
    fields = ("platform", "token", "app", "is_active", "deactivated_reason")


@admin.register(Recipient)
class RecipientAdmin(admin.ModelAdmin):
    list_display = ("id", "external_id", "name", "email", "phone", "timezone", "locale", "is_active", "created_at")
    list_filter = ("is_active", "locale")
    # Exact-match lookups keep search usable on a multi-million-row table.
    search_fields = ("external_id__exact", "email__exact", "phone__exact")
    show_full_result_count = False
    inlines = [DeviceInline]
    list_per_page = 50
    readonly_fields = ("webhook_secret",)  # for the endpoint's owner to verify signatures with


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    list_display = ("id", "recipient_id", "platform", "is_active", "deactivated_reason", "created_at")
    list_filter = ("platform", "is_active")
    search_fields = ("token__exact", "recipient__external_id__exact")
    raw_id_fields = ("recipient",)
    show_full_result_count = False


@admin.register(Topic)
class TopicAdmin(admin.ModelAdmin):
    list_display = ("slug", "name")
    search_fields = ("slug", "name")


@admin.register(Follow)
class FollowAdmin(admin.ModelAdmin):
    list_display = ("id", "topic", "recipient_id", "created_at")
    list_filter = ("topic",)
    search_fields = ("recipient__external_id__exact",)
    raw_id_fields = ("recipient",)
    list_select_related = ("topic",)
    show_full_result_count = False


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    list_display = ("name", "filters")
    search_fields = ("name",)
