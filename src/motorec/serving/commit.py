"""Group commit: one writer thread logs queued records with a single sync, then applies them.

Requests build their log lines themselves (the CPU part) and hand them over; the writer does only
write + fdatasync + the in-memory apply, so it holds Python's GIL for microseconds and a slow disk
sync is paid once per batch, not once per request. Log order = apply order = submission order.
Log maintenance (compaction) runs on the same thread between batches, so it never races an append.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from motorec.serving.wal import WalUnavailable, WriteAheadLog

MAX_BATCH = 256


class GroupCommitter:
    def __init__(self, wal: WriteAheadLog, apply: Callable[[dict[str, Any]], Any]) -> None:
        self.wal = wal
        self.apply = apply
        self.batches = 0
        self._closed = False
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="motorec-wal-writer", daemon=True)
        self._thread.start()

    def submit(self, record: dict[str, Any], line: bytes) -> Future:
        """Future of apply(record), resolved only after the record is durable."""
        return self._put(record, line)

    def run_on_writer(self, task: Callable[[], Any]) -> Future:
        """Future of task(), run on the writer thread after the records queued before it."""
        return self._put(task, None)

    def _put(self, job: Any, line: bytes | None) -> Future:
        if self._closed:
            raise WalUnavailable("the service is shutting down; nothing was written.")
        fut: Future = Future()
        self._queue.put((job, line, fut))
        return fut

    def _run(self) -> None:
        stop = False
        while not stop:
            batch = [self._queue.get()]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = any(job is None for job in batch)
            tasks = [job for job in batch if job is not None and job[1] is None]
            batch = [job for job in batch if job is not None and job[1] is not None]
            if batch:
                self._commit(batch)
            for task, _, fut in tasks:
                try:
                    fut.set_result(task())
                except BaseException as exc:
                    fut.set_exception(exc)
            self.wal.compact_if_due()
        while True:  # submitted while closing: refused, never left waiting
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return
            if job is not None:
                job[2].set_exception(WalUnavailable("the service is shutting down; nothing was written."))

    def _commit(self, batch: list[tuple[dict[str, Any], bytes, Future]]) -> None:
        try:
            self.wal.append_framed([line for _, line, _ in batch])
        except BaseException as exc:  # nothing of this batch is acknowledged
            for _, _, fut in batch:
                fut.set_exception(exc)
            return
        self.batches += 1
        for record, _, fut in batch:
            try:
                fut.set_result(self.apply(record))
            except BaseException as exc:
                fut.set_exception(exc)

    def close(self) -> None:
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout=30)
