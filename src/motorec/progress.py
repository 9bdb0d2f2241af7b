"""Progress of long work: a bar with an ETA on a terminal, plain periodic lines otherwise.

One mechanism for every long loop (tokenizer fitting, feature extraction, training, compare/tune,
export). On a terminal it is a rich bar with elapsed time and ETA; when stderr is not a terminal
(a log file, CI, nohup) a bar would print control codes or nothing, so a plain line is written
every `interval` seconds, and a last one at the end (work shorter than `interval` stays silent):

    motorec seed 2026: 12/1000 (1%) elapsed 0:00:31 eta 0:42:10 loss 0.4123 valid R@20 0.1934

`MetricLog` writes scalars (losses, validation metrics) to TensorBoard when asked
(`--set log.tensorboard=DIR`, needs the optional extra `pip install motorec[tensorboard]`).
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

#: Seconds between plain progress lines when stderr is not a terminal (env MOTOREC_PROGRESS_INTERVAL).
DEFAULT_INTERVAL = float(os.environ.get("MOTOREC_PROGRESS_INTERVAL", "30"))


def _clock(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Task:
    """One unit of progress; `advance` / `update` are cheap no-ops when disabled."""

    def __init__(
        self, description: str, total: float | None, completed: float, stream: TextIO | None, bar: Any, interval: float
    ) -> None:
        self.description, self.total, self.completed = description, total, completed
        self.status = ""
        self._stream, self._bar, self._interval = stream, bar, interval
        self._start = time.perf_counter()
        self._start_done = completed
        self._last = self._start
        self._printed = False
        self._id = bar.add_task(description, total=total, completed=completed, status="") if bar is not None else None

    def advance(self, n: float = 1, status: str | None = None) -> None:
        self.completed += n
        if status is not None:
            self.status = status
        if self._bar is not None:
            self._bar.update(self._id, advance=n, status=self.status)
        self._line()

    def update(self, status: str) -> None:
        self.status = status
        if self._bar is not None:
            self._bar.update(self._id, status=status)
        self._line()

    def eta_seconds(self) -> float | None:
        """Remaining time from the mean rate of this run (None before any step or without a total)."""
        done = self.completed - self._start_done
        if self.total is None or done <= 0:
            return None
        return (time.perf_counter() - self._start) / done * max(self.total - self.completed, 0)

    def line(self) -> str:
        elapsed = time.perf_counter() - self._start
        if self.total:
            text = f"{self.description}: {self.completed:g}/{self.total:g} ({100 * self.completed / self.total:.0f}%)"
        else:
            text = f"{self.description}: {self.completed:g}"
        text += f" elapsed {_clock(elapsed)}"
        eta = self.eta_seconds()
        if eta is not None:
            text += f" eta {_clock(eta)}"
        return text + (f" {self.status}" if self.status else "")

    def _line(self, force: bool = False) -> None:
        if self._stream is None:
            return
        now = time.perf_counter()
        if force or now - self._last >= self._interval:
            self._last, self._printed = now, True
            print(self.line(), file=self._stream, flush=True)

    def finish(self) -> None:
        if self._stream is not None and self._printed:
            self._line(force=True)


class Progress:
    """Holds the tasks of one `progress()` block (a rich bar on a terminal, lines otherwise)."""

    def __init__(self, bar: Any, stream: TextIO | None, interval: float) -> None:
        self._bar, self._stream, self._interval = bar, stream, interval
        self.tasks: list[Task] = []

    def task(self, description: str, total: float | None = None, completed: float = 0) -> Task:
        task = Task(description, total, completed, self._stream, self._bar, self._interval)
        self.tasks.append(task)
        return task


_live: list[Any] = []  # the rich bar on screen: nested blocks (a compare cell's training) add rows to it


def _is_terminal(stream: TextIO) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)())


@contextmanager
def progress(enabled: bool = True, interval: float | None = None, stream: TextIO | None = None) -> Iterator[Progress]:
    """`with progress() as p: t = p.task("fit", total=n); ... t.advance()`.

    enabled=False shows nothing (the `train.progress=false` / `--quiet` switches); `stream`
    defaults to stderr, so stdout stays clean for JSON and tables. Blocks may nest.
    """
    stream = stream if stream is not None else sys.stderr
    interval = DEFAULT_INTERVAL if interval is None else interval
    if not enabled:
        yield Progress(None, None, interval)
        return
    if _is_terminal(stream):
        if _live:
            holder = Progress(_live[-1], None, interval)
            try:
                yield holder
            finally:
                for task in holder.tasks:
                    _live[-1].remove_task(task._id)
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
        from rich.progress import Progress as RichProgress

        columns = (
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[status]}"),
        )
        with RichProgress(*columns, console=Console(file=stream), transient=True) as bar:
            _live.append(bar)
            try:
                yield Progress(bar, None, interval)
            finally:
                _live.pop()
        return
    holder = Progress(None, stream, interval)
    try:
        yield holder
    finally:
        for task in holder.tasks:
            task.finish()


class MetricLog:
    """Scalars to TensorBoard under DIR (one sub-folder per run/seed), or nothing when DIR is None.

    TensorBoard is an optional extra: without it a warning names the extra and training goes on.
    """

    def __init__(self, directory: str | os.PathLike | None) -> None:
        self._writer = None
        if directory is None:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # torch's writer imports the tensorboard package lazily
            warnings.warn(
                "log.tensorboard is set but TensorBoard is not installed "
                "(pip install 'motorec[tensorboard]'); training goes on without it.",
                stacklevel=2,
            )
            return
        Path(directory).mkdir(parents=True, exist_ok=True)
        self._writer = SummaryWriter(log_dir=str(directory))

    @property
    def active(self) -> bool:
        return self._writer is not None

    def scalars(self, step: int, values: dict[str, float]) -> None:
        if self._writer is None:
            return
        for name, value in values.items():
            self._writer.add_scalar(name, value, step)
        self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
