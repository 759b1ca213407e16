from django.contrib import admin

from .models import Category, Preference, QuietHours


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "kind", "priority", "default_enabled", "daily_cap", "max_attempts")
    list_filter = ("kind", "priority", "default_enabled")
    search_fields = ("slug", "name")


@admin.register(Preference)
class PreferenceAdmin(admin.ModelAdmin):
    list_display = ("id", "recipient_id", "category", "channel", "enabled", "updated_at")
    list_filter = ("category", "channel", "enabled")
    search_fields = ("recipient__external_id__exact",)
    raw_id_fields = ("recipient",)
    list_select_related = ("category",)
    show_full_result_count = False


@admin.register(QuietHours)
class QuietHoursAdmin(admin.ModelAdmin):
    list_display = ("recipient_id", "start", "end")
    search_fields = ("recipient__external_id__exact",)
    raw_id_fields = ("recipient",)
    show_full_result_count = False
