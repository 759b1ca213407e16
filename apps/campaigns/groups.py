"""The two admin groups the README names: "Marketer" builds, previews and tests campaigns; "Sender"
schedules, launches, pauses, resumes and cancels them (scheduling is a launch: beat sends what was
scheduled). Each holds every view permission its screens need (the topic and segment pickers, the
audit trail, the dead letters the results panel links to).

They are (re)made after every migrate, so a new database, and a test database after each flush, has them.
"""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission
from django.db.models import Q

SEES = [("campaigns", "view_campaign"), ("campaigns", "view_campaignevent"), ("content", "view_template"),
        ("content", "view_templatelocale"),
        ("audience", "view_topic"), ("audience", "view_segment"), ("preferences", "view_category"),
        ("delivery", "view_deadletter")]
GROUPS: dict[str, list[tuple[str, str]]] = {
    "Marketer": [*SEES, ("campaigns", "add_campaign"), ("campaigns", "change_campaign"),
                 ("content", "add_template"), ("content", "change_template"),
                 ("content", "add_templatelocale"), ("content", "change_templatelocale"),
                 ("content", "delete_templatelocale")],
    "Sender": [*SEES, ("campaigns", "launch_campaign")],
}


def ensure_groups(**kwargs: object) -> dict[str, int]:
    """Create or update the groups; returns how many permissions each holds."""
    made = {}
    for name, wanted in GROUPS.items():
        query = Q(pk__in=[])
        for app_label, codename in wanted:
            query |= Q(content_type__app_label=app_label, codename=codename)
        permissions = list(Permission.objects.filter(query))
        if len(permissions) < len(wanted):  # their apps' permissions are not made yet (mid-migrate)
            continue
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.add(*permissions)
        made[name] = len(permissions)
    return made
