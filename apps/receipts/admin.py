from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from . import suppressions
from .models import DeliveryEvent, Suppression


class ActiveFilter(admin.SimpleListFilter):
    title = "in force"
    parameter_name = "active"

    def lookups(self, request, model_admin):  # noqa: ANN001, ANN201
        return [("yes", "in force"), ("no", "lifted")]

    def queryset(self, request, queryset):  # noqa: ANN001, ANN201
        if self.value() in ("yes", "no"):
            return queryset.filter(lifted_at__isnull=self.value() == "yes")
        return queryset


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    """See, search and lift. Never delete: a lifted row is the audit of who let the address receive again."""

    list_display = ("address", "channel", "reason", "source", "recipient_id", "created_at", "lifted_at", "lifted_by")
    list_filter = (ActiveFilter, "channel", "reason", "source")
    search_fields = ("address",)
    date_hierarchy = "created_at"
    actions = ["lift_selected"]
    readonly_fields = ("created_at", "lifted_at", "lifted_by")
    fields = ("channel", "address", "recipient_id", "reason", "source", "detail", "created_at", "lifted_at",
              "lifted_by", "lift_note")

    def get_readonly_fields(self, request: HttpRequest, obj: Suppression | None = None) -> tuple:
        if obj is None:  # a new manual suppression
            return self.readonly_fields
        return tuple(f for f in self.fields if f != "lift_note")

    def has_delete_permission(self, request: HttpRequest, obj: Suppression | None = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Suppression, form, change: bool) -> None:  # noqa: ANN001
        if not change:
            obj.source = obj.source or f"admin:{request.user.get_username()}"
        super().save_model(request, obj, form, change)

    @admin.action(description="Lift the selected suppressions (sends to them again; the rows stay as the audit)",
                  permissions=["change"])
    def lift_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        lifted = suppressions.lift(queryset, by=request.user.get_username(), note="lifted in the admin")
        self.message_user(request, f"{lifted} suppression(s) lifted.", messages.SUCCESS)


@admin.register(DeliveryEvent)
class DeliveryEventAdmin(admin.ModelAdmin):
    list_display = ("delivery_id", "state", "at", "provider", "detail")
    list_filter = ("state", "provider")
    search_fields = ("=delivery_id",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: DeliveryEvent | None = None) -> bool:
        return False
