"""Progress on stderr for the long commands: a tqdm bar on a terminal, plain lines otherwise.

stdout is never touched (the benchmarks print one JSON line there that people and tests parse).
"""

from __future__ import annotations

import sys
import time
from typing import IO

from tqdm import tqdm


class ProgressBar:
    """One bar: advance() or set(), write() for a log line, close() at the end (or use `with`).

    On a terminal it is tqdm's bar (rate and ETA); elsewhere a plain line every `interval` seconds
    and one at close, so a log file or CI output gets readable lines instead of carriage returns.
    """

    def __init__(self, desc: str, total: int | None = None, unit: str = "it", file: IO[str] | None = None,
                 interval: float = 5.0, enabled: bool = True) -> None:
        self.file = file or sys.stderr
        self.desc, self.total, self.unit, self.interval, self.enabled = desc, total, unit, interval, enabled
        self.n = 0
        self.started = time.monotonic()
        self._last_line = self.started
        self._closed = False
        isatty = getattr(self.file, "isatty", None)
        self._bar = (tqdm(total=total, desc=desc, unit=unit, file=self.file, dynamic_ncols=True)
                     if enabled and isatty and isatty() else None)

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def advance(self, count: int = 1) -> None:
        self.set(self.n + count)

    def set(self, n: int, total: int | None = None) -> None:
        """Move to n done (of total, when it becomes known)."""
        if total is not None and total != self.total:
            self.total = total
            if self._bar is not None:
                self._bar.total = total
        self.n = n
        if self._bar is not None:
            self._bar.update(n - self._bar.n)
        elif self.enabled and time.monotonic() - self._last_line >= self.interval:
            self._line()

    def write(self, line: str) -> None:
        """A log line that does not break the bar."""
        if self._bar is not None:
            self._bar.write(line, file=self.file)
        else:
            self.file.write(line + "\n")
            self.file.flush()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
        elif self.enabled:
            self._line()

    def _line(self) -> None:
        self._last_line = time.monotonic()
        elapsed = self._last_line - self.started
        rate = self.n / elapsed if elapsed > 0 else 0.0
        shown = f"{rate:,.0f}" if rate >= 10 else f"{rate:.1f}"
        if self.total:
            left = tqdm.format_interval((self.total - self.n) / rate) if rate > 0 else "?"
            text = (f"{self.desc}: {self.n:,}/{self.total:,} {self.unit} ({100 * self.n / self.total:.0f}%), "
                    f"{shown} {self.unit}/s, ETA {left}")
        else:
            text = f"{self.desc}: {self.n:,} {self.unit}, {shown} {self.unit}/s"
        self.file.write(f"{text}, elapsed {tqdm.format_interval(elapsed)}\n")
        self.file.flush()
