"""The pipeline processes' collector tuning (apps/core/garbage_collector.py)."""

import gc
import subprocess
import sys

import pytest

from apps.core.garbage_collector import tune_for_pipeline


@pytest.fixture
def restore_gc():
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_start_up_objects_are_frozen_and_the_young_threshold_raised(settings, restore_gc):  # noqa: ANN001
    settings.GC_YOUNG_THRESHOLD = 50_000
    older = gc.get_threshold()[1:]
    tune_for_pipeline()
    assert gc.get_freeze_count() > 10_000  # Django and the app registry, out of the collector's walks
    assert gc.get_threshold() == (50_000, *older)


def test_zero_keeps_pythons_defaults(settings, restore_gc):  # noqa: ANN001
    settings.GC_YOUNG_THRESHOLD = 0
    before = gc.get_threshold()
    tune_for_pipeline()
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_a_bridge_process_tunes_itself_from_the_environment():
    """The same call as `run_bridge` makes at start-up, in a fresh process configured by env only."""
    code = ("import django, gc; django.setup(); from apps.core.garbage_collector import tune_for_pipeline; "
            "tune_for_pipeline(); print(gc.get_threshold()[0], gc.get_freeze_count() > 0)")
    env = {"DJANGO_SETTINGS_MODULE": "notifications_project.settings", "NOTIFY_DEVELOPMENT": "1",
           "NOTIFY_GC_YOUNG_THRESHOLD": "20000", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.split() == ["20000", "True"]
