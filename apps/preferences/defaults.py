"""The categories every installation starts with."""

from apps.core.channels import Priority

from .models import Category, CategoryKind

DEFAULT_CATEGORIES = [
    dict(slug="security", name="Security and OTP codes", kind=CategoryKind.TRANSACTIONAL, priority=Priority.HIGH,
         default_enabled=True, daily_cap=None, max_attempts=8, ttl_seconds=600, required_channels=["email", "sms"]),
    dict(slug="goal-alerts", name="Goal alerts", kind=CategoryKind.ALERTS, priority=Priority.NORMAL,
         default_enabled=True, daily_cap=None, max_attempts=5, ttl_seconds=900),
    dict(slug="promotions", name="Promotions", kind=CategoryKind.PROMOTIONAL, priority=Priority.LOW,
         default_enabled=True, daily_cap=2, max_attempts=3, ttl_seconds=3 * 86400),
]


def ensure_default_categories() -> dict[str, Category]:
    categories = {}
    for spec in DEFAULT_CATEGORIES:
        fields = {k: v for k, v in spec.items() if k != "slug"}
        categories[spec["slug"]], _ = Category.objects.get_or_create(slug=spec["slug"], defaults=fields)
    return categories
