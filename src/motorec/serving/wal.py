"""Write-ahead log: every state change is appended and fsynced before it is acknowledged.

One JSON record per line, prefixed by its CRC32: `<crc32 hex8> <json>\n`. The first record (the
header) names the bundle the log belongs to and a random generation id.

What a restart may find, and what it does:
- a torn, unterminated tail (a crash in the middle of a write, never acknowledged): dropped, kept
  in a side file `<log>.torn-<time>`, and reported (start-up output and /health);
- a damaged complete record (flipped or zeroed bytes, a record cut short inside the log), or a log
  shorter than what was acknowledged: a hard error naming the record and byte offset. Every
  complete line may have been acknowledged, so nothing is dropped silently; `--repair-wal` moves
  everything from the first bad record on to a side file `<log>.damaged-<time>` and keeps the
  records before it.
How far the log was acknowledged is written after every sync to the sidecar `<log>.synced`
(`<generation> <bytes>`, not synced itself: it survives a process crash, and after a power loss
it can only lag behind, never run ahead of the synced log).

Compaction rewrites the log as a snapshot of its state (the header, every item record as it was,
then one merged record per user holding all the user's online interactions in first-seen order,
which replays to the same state), written to a temporary file, fsynced and renamed over the log:
a crash at any point leaves either the old log or the new one, both complete.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from motorec.errors import MotorecError

WAL_FORMAT = "motorec-wal"
WAL_VERSION = 1
SYNCED_SUFFIX = ".synced"
COMPACT_TMP = ".compact.tmp"
DEFAULT_COMPACT_BYTES = 64 * 1024 * 1024
_HEADER_START = b'{"op":"header","format":"motorec-wal"'


def frame(record: dict[str, Any]) -> bytes:
    """One record as its log line (do this off the writer thread: it is the CPU-heavy part)."""
    body = json.dumps(record, separators=(",", ":"), ensure_ascii=True).encode()
    return b"%08x %s\n" % (zlib.crc32(body), body)


def _parse(line: bytes) -> tuple[dict[str, Any] | None, str]:
    """(record, '') of one complete line, or (None, what is wrong with it)."""
    if len(line) < 10 or line[8:9] != b" ":
        return None, "not a '<crc32> <json>' line"
    body = line[9:]
    try:
        if int(line[:8], 16) != zlib.crc32(body):
            return None, "checksum mismatch"
        record = json.loads(body)
    except (ValueError, RecursionError):
        return None, "checksum or JSON invalid"
    if not isinstance(record, dict) or not isinstance(record.get("op"), str):
        return None, "not a log record"
    return record, ""


def scan(data: bytes) -> tuple[list[dict[str, Any]], int, tuple[int, str] | None]:
    """(records of the complete lines, where they end, (offset, why) of the first bad line or None);
    read-only: what a restart would find in `data`."""
    records: list[dict[str, Any]] = []
    offset = 0
    while (end := data.find(b"\n", offset)) >= 0:
        record, why = _parse(data[offset:end])
        if record is None:
            return records, offset, (offset, why)
        records.append(record)
        offset = end + 1
    return records, offset, None


@dataclass
class Recovery:
    """What opening the log found and did (reported at start-up and in /health)."""

    records: int = 0
    torn_tail_bytes: int = 0
    torn_tail_file: str | None = None
    repaired: dict[str, Any] | None = None
    acknowledged_bytes_checked: bool = False
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = []
        if self.torn_tail_bytes:
            parts.append(
                f"dropped a torn, unacknowledged tail of {self.torn_tail_bytes} bytes (kept in {self.torn_tail_file})"
            )
        if self.repaired:
            moved = (
                f"moved {self.repaired['bytes_moved']} damaged bytes to {self.repaired['moved_to']}"
                if self.repaired["moved_to"]
                else "the acknowledged records after them are missing"
            )
            parts.append(f"repaired: kept {self.repaired['records_kept']} records, {moved}")
        return "; ".join(parts + self.notes)


class WalDamaged(MotorecError):
    """The log holds a damaged record that may have been acknowledged."""


class WalUnavailable(MotorecError):
    """The log cannot be written (disk full, I/O error): writes are refused (HTTP 503)."""


class WriteAheadLog:
    """Append-only, fsynced log bound to one bundle fingerprint, compacted when it has grown."""

    def __init__(
        self,
        path: str | os.PathLike,
        bundle_fingerprint: str,
        repair: bool = False,
        compact_bytes: int = DEFAULT_COMPACT_BYTES,
        compact_records: int = 0,
    ) -> None:
        self.path = Path(path)
        self.synced_path = self.path.with_name(self.path.name + SYNCED_SUFFIX)
        if self.path.exists() and not self.path.is_file():
            raise MotorecError(f"--wal {self.path}: is not a file.")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise MotorecError(f"--wal {self.path}: cannot create its folder ({exc.strerror or exc}).") from exc
        self.fingerprint = bundle_fingerprint
        self.compact_bytes = compact_bytes
        self.compact_records = compact_records
        self.records = 0
        self.compactions = 0
        self.last_compaction: dict[str, Any] | None = None
        self.last_compaction_error: str | None = None
        self.recovery = Recovery()
        self.broken: str | None = None
        self._lock = threading.Lock()
        self._remove_stale_compaction()
        self._pending, recovered, self._size = self._recover(repair)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._synced_fd = os.open(self.synced_path, os.O_WRONLY | os.O_CREAT, 0o644)
        self.generation: str = recovered if recovered is not None else uuid.uuid4().hex
        if recovered is None:
            self.append_framed([frame(self._header())])
            self.records = 0
        else:
            self._write_synced()
        self._since_compaction = (self._size, len(self._pending))
        self._fsync_dir()

    # ----------------------------------------------------------------- opening
    def _header(self, **extra: Any) -> dict[str, Any]:
        return {
            "op": "header",
            "format": WAL_FORMAT,
            "version": WAL_VERSION,
            "bundle": self.fingerprint,
            "generation": self.generation,
            **extra,
        }

    def _remove_stale_compaction(self) -> None:
        """A compaction's temporary file left by a crash before its rename (the log is intact)."""
        stale = self.path.with_name(self.path.name + COMPACT_TMP)
        if stale.is_file():
            stale.unlink()

    def _acknowledged(self, generation: str | None) -> int | None:
        """Bytes of this log generation (None: of any) acknowledged before the last stop, if recorded."""
        try:
            gen, size = self.synced_path.read_text().split()
            return int(size) if generation is None or gen == generation else None
        except (OSError, ValueError):
            return None

    def _recover(self, repair: bool) -> tuple[list[dict[str, Any]], str | None, int]:
        """(records after the header, generation, valid length); see the module docstring."""
        if not self.path.is_file():  # no log (a first start, or one moved aside on purpose): a new one
            return [], None, 0
        if self.path.stat().st_size == 0:
            acked = self._acknowledged(None)
            if acked and not repair:
                raise WalDamaged(
                    f"write-ahead log {self.path}: is empty, but {acked} bytes of it were acknowledged "
                    f"({self.synced_path.name}); the file was emptied. `motorec serve ... --repair-wal` "
                    f"starts a new log from the bundle."
                )
            if acked:
                self.recovery.repaired = {
                    "record": 1,
                    "byte": 0,
                    "reason": "the log was emptied",
                    "bytes_moved": 0,
                    "moved_to": None,
                    "records_kept": 0,
                }
            return [], None, 0
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            raise MotorecError(f"write-ahead log {self.path}: cannot be read ({exc.strerror or exc}).") from exc
        records, offset, bad = scan(data)
        if not records and not (self._could_be_torn_header(data) or (bad is not None and data[8:10] == b" {")):
            raise MotorecError(
                f"write-ahead log {self.path}: is not a motorec write-ahead log (no header record); "
                f"point --wal at another file."
            )
        if records:
            self._check_header(records[0])
        generation = (records[0].get("generation") or data[:8].decode()) if records else None
        acked = self._acknowledged(generation) if generation else None
        self.recovery.acknowledged_bytes_checked = acked is not None
        if bad is not None or (acked is not None and acked > offset):
            where = bad[0] if bad else offset
            n = len(records) + 1
            reason = (
                bad[1]
                if bad
                else (
                    f"the log was acknowledged up to byte {acked}, but its intact records end "
                    f"at byte {offset} (record {n} is cut short or missing)"
                )
            )
            if not repair:
                raise WalDamaged(
                    f"write-ahead log {self.path}: record {n} (byte {where}) is damaged: {reason}. Records up to it "
                    f"may have been acknowledged, so the service refuses to start rather than drop them. "
                    f"`motorec serve ... --repair-wal` moves everything from record {n} on to a side file and starts "
                    f"with the {max(len(records) - 1, 0)} records before it."
                )
            moved = self._move_tail(data, where, "damaged")
            self.recovery.repaired = {
                "record": n,
                "byte": where,
                "reason": reason,
                "bytes_moved": len(data) - where,
                "moved_to": str(moved) if moved else None,
                "records_kept": max(len(records) - 1, 0),
            }
        elif offset < len(data):
            moved = self._move_tail(data, offset, "torn")
            self.recovery.torn_tail_bytes = len(data) - offset
            self.recovery.torn_tail_file = str(moved)
        if not records:
            return [], None, 0
        self.recovery.records = len(records) - 1
        return records[1:], generation, offset

    @staticmethod
    def _could_be_torn_header(data: bytes) -> bool:
        """An unterminated first line that may be the header cut by a crash while creating the log."""
        if b"\n" in data:
            return False
        head, body = data[:8], data[9:]
        return (
            all(c in b"0123456789abcdef" for c in head)
            and data[8:9] in (b" ", b"")
            and _HEADER_START.startswith(body[: len(_HEADER_START)])
        )

    def _check_header(self, head: dict[str, Any]) -> None:
        if head.get("op") != "header" or head.get("format") != WAL_FORMAT:
            raise MotorecError(f"write-ahead log {self.path}: first record is not a motorec WAL header.")
        if head.get("version") != WAL_VERSION:
            raise MotorecError(
                f"write-ahead log {self.path}: version {head.get('version')}, this motorec reads {WAL_VERSION}."
            )
        if head.get("bundle") != self.fingerprint:
            raise MotorecError(
                f"write-ahead log {self.path} belongs to another bundle; point --wal elsewhere or "
                f"move it aside to serve this bundle from scratch."
            )

    def _move_tail(self, data: bytes, start: int, kind: str) -> Path | None:
        """Copy data[start:] to a side file (synced; none when empty), then cut the log there."""
        side = None
        if start < len(data):
            side = self.path.with_name(f"{self.path.name}.{kind}-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}")
            with open(side, "wb") as f:
                f.write(data[start:])
                f.flush()
                os.fsync(f.fileno())
        with open(self.path, "r+b") as f:
            f.truncate(start)
            os.fsync(f.fileno())
        self._fsync_dir()
        return side

    # ----------------------------------------------------------------- writing
    def replay(self) -> Iterator[dict[str, Any]]:
        """Records written before this process started, oldest first (once)."""
        pending, self._pending = self._pending, []
        self.records = len(pending)
        yield from pending

    def append(self, record: dict[str, Any]) -> None:
        """Durable once this returns: acknowledge the request only after it."""
        self.append_framed([frame(record)])

    def append_framed(self, lines: list[bytes]) -> None:
        """Several framed records with one write and one sync (group commit)."""
        with self._lock:
            if self.broken:
                raise WalUnavailable(
                    f"write-ahead log {self.path}: not writable since an earlier failure "
                    f"({self.broken}); restart the service."
                )
            data = memoryview(b"".join(lines))
            n = len(data)
            try:
                while data:
                    data = data[os.write(self._fd, data) :]
                os.fdatasync(self._fd)  # data + size; cheaper than fsync, same durability for an append
            except OSError as exc:
                # After a failed write or sync the file's state is unknown: stop writing (a restart
                # re-reads what is really on disk) rather than append after a partial record.
                self.broken = exc.strerror or str(exc)
                raise WalUnavailable(
                    f"write-ahead log {self.path}: write failed ({self.broken}); nothing of this "
                    f"request was acknowledged. The service accepts no more writes until restarted."
                ) from exc
            self._size += n
            self.records += len(lines)
            self._write_synced()

    def _write_synced(self) -> None:
        """Record how far the log is acknowledged (fixed width, so one overwrite in place)."""
        os.pwrite(self._synced_fd, b"%s %020d\n" % (self.generation.encode(), self._size), 0)

    # --------------------------------------------------------------- compaction
    def should_compact(self) -> bool:
        """Grown by at least max(compact_bytes, its size after the last compaction or start), or by
        compact_records records (amortised: each compaction at least doubles what it replaces)."""
        size0, records0 = self._since_compaction
        by_bytes = self.compact_bytes > 0 and self._size - size0 >= max(self.compact_bytes, size0)
        by_records = self.compact_records > 0 and self.records - records0 >= max(self.compact_records, records0)
        return by_bytes or by_records

    def compact(self) -> dict[str, Any]:
        """Rewrite the log as a snapshot of its state (see the module docstring); returns what it did.
        Call it where no append runs concurrently (the service's writer thread). A failure leaves
        the log in use complete (the old one, or the new one once renamed) and raises WalUnavailable."""
        with self._lock:
            try:
                return self._compact()
            except (OSError, MotorecError) as exc:
                self.path.with_name(self.path.name + COMPACT_TMP).unlink(missing_ok=True)
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                raise WalUnavailable(
                    f"write-ahead log {self.path}: compaction failed ({reason}); nothing "
                    f"acknowledged is lost, the log keeps growing until a compaction succeeds."
                ) from exc

    def _compact(self) -> dict[str, Any]:
        t0 = time.perf_counter()
        before_bytes, before_records = self._size, self.records
        tmp = self.path.with_name(self.path.name + COMPACT_TMP)
        generation = uuid.uuid4().hex
        users: dict[str, dict[str, None]] = {}  # user -> its items in first-seen order
        last_t: dict[str, float] = {}
        kept = 0
        with open(self.path, "rb") as src, open(tmp, "wb") as dst:
            first = True
            for line in src:
                record, why = _parse(line.rstrip(b"\n")) if line.endswith(b"\n") else (None, "unterminated")
                if record is None:
                    raise MotorecError(
                        f"write-ahead log {self.path}: a record became unreadable on disk ({why}); "
                        f"compaction skipped, the log is left as it is."
                    )
                if first:
                    first = False
                    dst.write(
                        frame(
                            {
                                **self._header(),
                                "generation": generation,
                                "compacted": {"records": before_records, "bytes": before_bytes, "t": time.time()},
                            }
                        )
                    )
                    continue
                if record["op"] == "interactions":
                    users.setdefault(record["user"], {}).update(dict.fromkeys(record["items"]))
                    last_t[record["user"]] = record.get("t", 0.0)
                else:
                    dst.write(line)
                    kept += 1
            for user, items in users.items():
                dst.write(
                    frame({"op": "interactions", "user": user, "items": list(items), "t": last_t[user], "merged": True})
                )
            dst.flush()
            os.fsync(dst.fileno())
            size = dst.tell()
        new_fd = os.open(tmp, os.O_WRONLY | os.O_APPEND)  # opened before the rename: no window without one
        try:
            os.replace(tmp, self.path)
        except BaseException:
            os.close(new_fd)
            raise
        old_fd, self._fd = self._fd, new_fd
        os.close(old_fd)
        self.generation, self._size = generation, size
        self.records = kept + len(users)
        self._write_synced()
        self._fsync_dir()
        self._since_compaction = (self._size, self.records)
        self.compactions += 1
        self.last_compaction = {
            "bytes_before": before_bytes,
            "bytes_after": size,
            "records_before": before_records,
            "records_after": self.records,
            "seconds": round(time.perf_counter() - t0, 4),
            "t": time.time(),
        }
        return self.last_compaction

    def compact_if_due(self) -> None:
        """Compaction when due; a failure leaves the old log in place and is reported in /health."""
        if not self.should_compact():
            return
        try:
            self.compact()
            self.last_compaction_error = None
        except Exception as exc:  # maintenance: never take the writer down; the log in use stays valid
            self.path.with_name(self.path.name + COMPACT_TMP).unlink(missing_ok=True)
            self.last_compaction_error = str(exc)
            self._since_compaction = (self._size, self.records)  # retry after the log grows again

    # ------------------------------------------------------------------- misc
    def _fsync_dir(self) -> None:
        fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def status(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "records": self.records,
            "bytes": self._size,
            "compactions": self.compactions,
            "last_compaction": self.last_compaction,
            "last_compaction_error": self.last_compaction_error,
            "torn_tail_dropped_bytes": self.recovery.torn_tail_bytes,
            "torn_tail_file": self.recovery.torn_tail_file,
            "repaired": self.recovery.repaired,
            "acknowledged_length_checked": self.recovery.acknowledged_bytes_checked,
            "write_error": self.broken,
        }

    def close(self) -> None:
        os.close(self._fd)
        os.close(self._synced_fd)

    @property
    def size(self) -> int:
        return self.path.stat().st_size
