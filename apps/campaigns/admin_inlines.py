"""The campaign form's inlines: the A/B variants (editable while a draft) and the read-only audit trail."""

from __future__ import annotations

from django.contrib import admin

from .forms import VariantFormSet
from .models import CampaignEvent, CampaignVariant


class CampaignEventInline(admin.TabularInline):
    """The audit trail: read-only, and visible to everyone who may see the campaign."""

    model = CampaignEvent
    extra = 0
    can_delete = False
    fields = ("at", "user", "action", "detail")
    readonly_fields = fields
    verbose_name_plural = "Audit trail"

    def has_view_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        return request.user.has_perm("campaigns.view_campaign") or request.user.has_perm("campaigns.change_campaign")

    def has_add_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        return False

    def has_change_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        return False


class CampaignVariantInline(admin.TabularInline):
    model = CampaignVariant
    formset = VariantFormSet
    extra = 0
    autocomplete_fields = ("template",)
    verbose_name = "A/B variant"
    verbose_name_plural = "A/B variants (optional: two or more templates whose shares add up to 100%; they"\
                          " replace the template above)"

    # Variants are part of the campaign: whoever may edit (or see) the campaign may edit (or see) them.
    def has_view_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        return request.user.has_perm("campaigns.view_campaign") or self.has_change_permission(request, obj)

    def has_add_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        return self.has_change_permission(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        perm = "campaigns.change_campaign" if obj is not None and obj.pk else "campaigns.add_campaign"
        return request.user.has_perm(perm)

    def has_delete_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        return self.has_change_permission(request, obj)
