"""Write-ahead log: every state change is appended and fsynced before it is acknowledged.

One JSON record per line, prefixed by its CRC32: `<crc32 hex8> <json>\n`. The first record names
the bundle the log belongs to. After a crash (even `kill -9` mid-write) the only damage possible
is a torn last line, which was never acknowledged: replay drops it and truncates the file. A bad
record anywhere else is corruption and stops the service with a clear error.
"""
from __future__ import annotations

import json
import os
import threading
import zlib
from pathlib import Path
from typing import Any, Iterator

from motorec.errors import MotorecError

WAL_FORMAT = "motorec-wal"
WAL_VERSION = 1


def frame(record: dict[str, Any]) -> bytes:
    """One record as its log line (do this off the writer thread: it is the CPU-heavy part)."""
    body = json.dumps(record, separators=(",", ":"), ensure_ascii=True).encode()
    return b"%08x %s\n" % (zlib.crc32(body), body)


def _parse(line: bytes) -> dict[str, Any] | None:
    """The record of one complete line, or None when its checksum or JSON is bad."""
    if len(line) < 10 or line[8:9] != b" ":
        return None
    body = line[9:]
    try:
        if int(line[:8], 16) != zlib.crc32(body):
            return None
        return json.loads(body)
    except ValueError:
        return None


class WriteAheadLog:
    """Append-only, fsynced log bound to one bundle fingerprint."""

    def __init__(self, path: str | os.PathLike, bundle_fingerprint: str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fingerprint = bundle_fingerprint
        self.records = 0
        self.truncated_bytes = 0
        self._lock = threading.Lock()
        self._pending = self._recover()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if not self._pending and self.path.stat().st_size == 0:
            self.append_framed([frame({"op": "header", "format": WAL_FORMAT, "version": WAL_VERSION,
                                        "bundle": bundle_fingerprint})])
            self.records = 0
        self._fsync_dir()

    def _recover(self) -> list[dict[str, Any]]:
        """Records after the header; a torn tail is cut off, anything else wrong is an error."""
        if not self.path.is_file():
            return []
        data = self.path.read_bytes()
        records: list[dict[str, Any]] = []
        offset = 0
        lines = data.split(b"\n")
        for i, line in enumerate(lines):
            last = i == len(lines) - 1
            if last:  # text after the final newline: a write cut short by a crash
                break
            rec = _parse(line)
            if rec is None:
                if i == len(lines) - 2:  # the last complete line is damaged: also a torn write
                    break
                raise MotorecError(f"write-ahead log {self.path}: record {i + 1} is corrupt (checksum or JSON); "
                                   f"refusing to replay a damaged log. Move it aside to start from the bundle.")
            records.append(rec)
            offset += len(line) + 1
        if offset < len(data):
            self.truncated_bytes = len(data) - offset
            with open(self.path, "r+b") as f:
                f.truncate(offset)
                os.fsync(f.fileno())
        if not records:
            return []
        head = records[0]
        if head.get("op") != "header" or head.get("format") != WAL_FORMAT:
            raise MotorecError(f"write-ahead log {self.path}: first record is not a motorec WAL header.")
        if head.get("version") != WAL_VERSION:
            raise MotorecError(f"write-ahead log {self.path}: version {head.get('version')}, this motorec reads {WAL_VERSION}.")
        if head.get("bundle") != self.fingerprint:
            raise MotorecError(f"write-ahead log {self.path} belongs to another bundle; point --wal elsewhere or "
                               f"move it aside to serve this bundle from scratch.")
        return records[1:]

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
            data = memoryview(b"".join(lines))
            while data:
                data = data[os.write(self._fd, data):]
            os.fdatasync(self._fd)  # data + size; cheaper than fsync, same durability for an append
            self.records += len(lines)

    def _fsync_dir(self) -> None:
        fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def close(self) -> None:
        os.close(self._fd)

    @property
    def size(self) -> int:
        return self.path.stat().st_size
