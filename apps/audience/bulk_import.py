"""Bulk import of recipients from CSV or JSON lines, streamed: bytes in, checked rows COPYed into a
temporary staging table, then one upsert by external_id. Memory stays flat whatever the file's size
(one chunk of lines at a time; duplicates are found in PostgreSQL, not in a Python set).

A CSV has a header naming some of external_id (required), name, email, phone, timezone, locale; a
JSON line is an object of those. A field given is set (an empty one clears it), a field not given is
kept for an existing recipient. Rejected, by line: NUL or other binary bytes, text that is not UTF-8,
a line over MAX_LINE_BYTES, a malformed record, an invalid value (import_checks.py), and an
external_id already given on an earlier line of the same import (the first one is imported).
Everything is one transaction: an import that fails half-way imports nothing.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from django.db import connection, transaction

from .import_checks import FIELDS, check_chunk

MAX_LINE_BYTES = 64 * 1024
CHUNK_ROWS = 2_000
LISTED_REJECTS = 10_000  # the report lists this many; `rejected` counts them all
_BINARY = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
FORMATS = ("csv", "jsonl")

_STAGING = """
DROP TABLE IF EXISTS recipient_import;
CREATE TEMPORARY TABLE recipient_import (line bigint, external_id text, name text, email text, phone text,
                                         timezone text, locale text) ON COMMIT DROP
"""
_DUPLICATES = """
DELETE FROM recipient_import s USING (
    SELECT external_id, min(line) AS first_line FROM recipient_import GROUP BY external_id HAVING count(*) > 1
) f WHERE s.external_id = f.external_id AND s.line <> f.first_line
RETURNING s.line, f.first_line
"""
_UPDATE = """
UPDATE audience_recipient r SET name = coalesce(s.name, r.name), email = coalesce(s.email, r.email),
    phone = coalesce(s.phone, r.phone), timezone = coalesce(s.timezone, r.timezone),
    locale = coalesce(s.locale, r.locale)
FROM recipient_import s WHERE r.external_id = s.external_id
  AND (r.name, r.email, r.phone, r.timezone, r.locale) IS DISTINCT FROM
      (coalesce(s.name, r.name), coalesce(s.email, r.email), coalesce(s.phone, r.phone),
       coalesce(s.timezone, r.timezone), coalesce(s.locale, r.locale))
"""
_INSERT = """
INSERT INTO audience_recipient (external_id, name, email, phone, timezone, locale, is_active, created_at)
SELECT s.external_id, coalesce(s.name, ''), coalesce(s.email, ''), coalesce(s.phone, ''),
       coalesce(s.timezone, ''), coalesce(s.locale, 'en'), true, now()
FROM recipient_import s
WHERE NOT EXISTS (SELECT 1 FROM audience_recipient r WHERE r.external_id = s.external_id)
"""


class ImportRefused(ValueError):
    """The whole file is refused (no header, an unknown column...): nothing imported."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message, self.field = message, field


@dataclass
class Report:
    lines: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    rejects: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    upsert_seconds: float = 0.0  # of which: duplicates, UPDATE and INSERT after the COPY

    def reject(self, line: int, reason: str, field_name: str) -> None:
        self.rejected += 1
        if len(self.rejects) < LISTED_REJECTS:
            self.rejects.append({"line": line, "reason": reason, "field": field_name})

    def as_dict(self) -> dict:
        self.rejects.sort(key=lambda r: r["line"])
        return {"lines": self.lines, "created": self.created, "updated": self.updated, "unchanged": self.unchanged,
                "rejected": self.rejected, "rejects": self.rejects,
                "rejects_listed": len(self.rejects), "seconds": round(self.seconds, 2),
                "upsert_seconds": round(self.upsert_seconds, 2)}


class _Lines:
    """The stream's lines (without their end), each checked for binary bytes and decoded; a bad line is
    reported and skipped. `number` is the line last read; `bytes_read` for progress."""

    def __init__(self, stream: BinaryIO, report: Report, block: int = 1 << 20) -> None:
        self.stream, self.report, self.block = stream, report, block
        self.number = 0
        self.bytes_read = 0

    def __iter__(self) -> Iterator[str]:
        pending, skipping = b"", False
        while data := self.stream.read(self.block):
            self.bytes_read += len(data)
            buffer = pending + data
            if skipping:  # the rest of an over-long line, up to its end
                end = buffer.find(b"\n")
                if end < 0:
                    pending = b""
                    continue
                buffer, skipping = buffer[end + 1:], False
            parts = buffer.split(b"\n")
            pending = parts.pop()
            for raw in parts:
                text = self._decode(raw)
                if text is not None:
                    yield text
            if len(pending) > MAX_LINE_BYTES:
                self.number += 1
                self._refuse(f"line longer than {MAX_LINE_BYTES} bytes")
                pending, skipping = b"", True
        if pending and not skipping:
            text = self._decode(pending)
            if text is not None:
                yield text

    def _decode(self, raw: bytes) -> str | None:
        self.number += 1
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if len(raw) > MAX_LINE_BYTES:
            return self._refuse(f"line longer than {MAX_LINE_BYTES} bytes")
        binary = _BINARY.search(raw)
        if binary:
            byte = binary.group()[0]
            return self._refuse("NUL byte" if byte == 0 else f"binary data (byte 0x{byte:02x})")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return self._refuse("not UTF-8 text")

    def _refuse(self, reason: str) -> None:
        self.report.reject(self.number, reason, "line")
        return None


def _csv_items(lines: _Lines, report: Report) -> tuple[tuple[str, ...], Iterator[tuple[int, object]]]:
    reader = csv.reader(lines, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise ImportRefused("empty file: the first line must name the columns", "header") from None
    except csv.Error as exc:
        raise ImportRefused(f"unreadable header: {exc}", "header") from None
    names = tuple(name.strip().lower() for name in header)
    unknown = [n for n in names if n not in FIELDS]
    if unknown:
        raise ImportRefused(f"unknown column {unknown[0][:64]!r} (columns: {', '.join(FIELDS)})", "header")
    if len(set(names)) != len(names) or "external_id" not in names:
        raise ImportRefused("the header must name external_id, and each column once", "header")

    def items() -> Iterator[tuple[int, object]]:
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                report.reject(lines.number, f"malformed CSV: {exc}", "line")
                continue
            if row:
                yield lines.number, row

    return names, items()


def _json_items(lines: _Lines) -> Iterator[tuple[int, object]]:
    for text in lines:
        if text.strip():
            yield lines.number, text


def _chunks(items: Iterable[tuple[int, object]]) -> Iterator[list[tuple[int, object]]]:
    chunk: list[tuple[int, object]] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= CHUNK_ROWS:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class _CopySource:
    """A file-like object psycopg2's COPY reads: checked rows, produced as it asks for them."""

    def __init__(self, parts: Iterator[str]) -> None:
        self.parts, self.buffer = parts, ""

    def read(self, size: int = -1) -> str:
        while size < 0 or len(self.buffer) < size:
            part = next(self.parts, None)
            if part is None:
                break
            self.buffer += part
        if size < 0:
            size = len(self.buffer)
        out, self.buffer = self.buffer[:size], self.buffer[size:]
        return out

    readline = read


def import_recipients(stream: BinaryIO, fmt: str, workers: int = 1,
                      progress: Callable[[int], None] | None = None) -> Report:
    """Import the stream; `workers` > 1 checks rows in that many processes (the command's long loop);
    `progress(bytes_read)` is called per chunk."""
    import time

    if fmt not in FORMATS:
        raise ImportRefused(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})", "format")
    started, report = time.monotonic(), Report()
    lines = _Lines(stream, report)
    header, items = _csv_items(lines, report) if fmt == "csv" else (None, _json_items(lines))
    pool = None
    if workers > 1:
        import multiprocessing

        # Spawned, not forked: a child must not inherit (and, exiting, close) this process's database
        # connection. The checks need no Django set-up.
        pool = multiprocessing.get_context("spawn").Pool(workers)
        checked = _in_parallel(pool, header, _chunks(items), window=2 * workers)
    else:
        checked = (check_chunk(header, c) for c in _chunks(items))

    def copy_text() -> Iterator[str]:
        for text, rejects in checked:
            for line, reason, field_name in rejects:
                report.reject(line, reason, field_name)
            if progress:
                progress(lines.bytes_read)
            yield text

    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_STAGING)
            cursor.copy_expert("COPY recipient_import (line, external_id, name, email, phone, timezone, locale)"
                               " FROM STDIN", _CopySource(copy_text()), size=1 << 16)
            upsert_started = time.monotonic()
            _upsert(cursor, report)
            report.upsert_seconds = time.monotonic() - upsert_started
            cursor.execute("DROP TABLE recipient_import")
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    report.lines = lines.number
    report.seconds = time.monotonic() - started
    return report


def _in_parallel(pool, header: tuple[str, ...] | None, chunks: Iterator[list], window: int  # noqa: ANN001
                 ) -> Iterator[tuple[str, list]]:
    """check_chunk over the pool, in order, with at most `window` chunks in flight: the file is read no
    faster than COPY takes the rows (Pool.imap would read it all ahead into memory)."""
    from collections import deque

    in_flight: deque = deque()
    for chunk in chunks:
        in_flight.append(pool.apply_async(check_chunk, (header, chunk)))
        if len(in_flight) >= window:
            yield in_flight.popleft().get()
    while in_flight:
        yield in_flight.popleft().get()


def _upsert(cursor, report: Report) -> None:  # noqa: ANN001
    # Room for the hash joins and aggregate over a million staged rows, so they do not spill to disk.
    cursor.execute("SET LOCAL work_mem = '64MB'")
    cursor.execute(_DUPLICATES)
    while rows := cursor.fetchmany(10_000):
        for line, first_line in rows:
            report.reject(line, f"duplicate external_id (first given on line {first_line})", "external_id")
    cursor.execute("ANALYZE recipient_import")
    cursor.execute("SELECT count(*) FROM recipient_import")
    kept = cursor.fetchone()[0]
    # Concurrent writers of recipients wait the few seconds of the upsert (readers, such as the
    # dispatcher, do not): between the UPDATE and the INSERT nobody may create one of these external ids.
    cursor.execute("LOCK TABLE audience_recipient IN SHARE ROW EXCLUSIVE MODE")
    cursor.execute(_UPDATE)
    report.updated = cursor.rowcount
    cursor.execute(_INSERT)
    report.created = cursor.rowcount
    report.unchanged = kept - report.created - report.updated
