from django.contrib import admin

from .models import InboxMessage


@admin.register(InboxMessage)
class InboxMessageAdmin(admin.ModelAdmin):
    list_display = ("id", "recipient", "title", "created_at", "read_at")
    raw_id_fields = ("recipient",)
    show_full_result_count = False
    ordering = ("-id",)
