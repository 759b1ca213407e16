"""The cyclic garbage collector, tuned for the long-running pipeline processes (Celery workers, bridges).

A 5,000-recipient batch makes some 100,000 short-lived tuples (contact rows, targets, provider results)
that reference counting frees at once; with Python's default young-generation threshold (700) they set
off about 24 collections a batch, 15 ms of a batch's 65 ms of CPU, and the older generations' passes
walked every object start-up had made (Django, the app registry, every module). Freezing what start-up
made takes it out of those walks, and a higher threshold lets the young generation fill with objects that
are already gone. Cycles are still collected, only later.
"""

from __future__ import annotations

import gc

from django.conf import settings


def tune_for_pipeline() -> None:
    """Call once, after start-up and before the work (in a Celery worker's main process, before it
    forks its children, which inherit both the frozen objects and the threshold)."""
    threshold = settings.GC_YOUNG_THRESHOLD
    if not threshold:
        return
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(threshold, older, oldest)
