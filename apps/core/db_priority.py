"""Lower the CPU priority of this process's PostgreSQL backends (NOTIFY_DB_NICE), for bulk workers.

When a marketing blast and OTP codes share one database host, the blast's queries would otherwise
compete on equal terms with the OTP's few. A bulk worker started with NOTIFY_DB_NICE=10 renices
the server process behind each of its connections, as `nice` does for the worker itself. This
only works when PostgreSQL runs on this host as a user we may renice; otherwise it is logged once
and skipped (use separate database capacity for priorities then).
"""

from __future__ import annotations

import logging
import os

from django.conf import settings

log = logging.getLogger(__name__)
_warned = False


def renice_backend(sender, connection, **kwargs) -> None:  # noqa: ANN001, ANN003
    global _warned
    if settings.DB_NICE <= 0 or connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        os.setpriority(os.PRIO_PROCESS, pid, settings.DB_NICE)
    except OSError as exc:
        if not _warned:
            _warned = True
            log.warning("NOTIFY_DB_NICE: cannot renice database backend %s (%s); skipped", pid, exc.strerror)
