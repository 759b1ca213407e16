from django.contrib import admin

from .models import Campaign, Template


@admin.register(Template)
class TemplateAdmin(admin.ModelAdmin):
    list_display = ("name", "push_title", "email_subject", "updated_at")
    search_fields = ("name", "push_title", "email_subject")


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ("name", "category", "channels", "topic", "status", "send_at", "created_by", "created_at")
    list_filter = ("status", "category")
    search_fields = ("name",)
    autocomplete_fields = ("topic", "segment", "template")
    readonly_fields = ("created_by",)

    def save_model(self, request, obj, form, change):  # noqa: ANN001
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
