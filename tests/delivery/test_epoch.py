"""The bridges' epoch check (apps/delivery/epoch.check_now_and_then) through a PostgreSQL restart: a check that
meets the broken connection is skipped and drops it, so the next check, and the bridge around it, go on."""

from __future__ import annotations

import pytest
from django.db import connection

from apps.delivery import epoch
from apps.delivery.models import Notification


@pytest.mark.django_db(transaction=True)
def test_a_check_on_a_connection_the_server_closed_is_skipped_and_the_next_one_works(monkeypatch):
    checked = []
    monkeypatch.setattr(epoch, "current", lambda: checked.append(Notification.objects.exists()))
    monkeypatch.setattr(epoch, "_last_check", 0.0)
    connection.ensure_connection()
    connection.connection.close()  # what a restart leaves: Django still holds the closed connection
    epoch.check_now_and_then()  # InterfaceError: "connection already closed"; skipped, not raised
    assert checked == []
    monkeypatch.setattr(epoch, "_last_check", 0.0)
    epoch.check_now_and_then()
    assert checked == [False]
