"""Progress: plain periodic lines off a terminal, a rich bar on one, TensorBoard scalars when asked."""

from __future__ import annotations

import builtins
import io

import pytest

import motorec
from motorec.progress import MetricLog, progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_when_not_a_terminal():
    stream = io.StringIO()
    with progress(stream=stream, interval=0) as bar:
        task = bar.task("fit", total=4)
        for i in range(4):
            task.advance(status=f"loss {i}")
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("fit: 1/4 (25%) elapsed 0:00:00 eta 0:00:00 loss 0")
    assert lines[-1].startswith("fit: 4/4 (100%)") and lines[-1].endswith("loss 3")
    assert "\x1b" not in stream.getvalue()  # no control codes in a log file


def test_short_work_off_a_terminal_is_silent_and_disabled_is_silent():
    stream = io.StringIO()
    with progress(stream=stream, interval=60) as bar:
        bar.task("quick", total=2).advance(2)
    with progress(enabled=False, stream=stream, interval=0) as bar:
        bar.task("off", total=2).advance(2)
    assert stream.getvalue() == ""


def test_eta_from_the_mean_rate():
    with progress(stream=io.StringIO(), interval=60) as bar:
        task = bar.task("x", total=10, completed=5)
        assert task.eta_seconds() is None  # nothing done in this run yet (a resumed start is not a rate)
        task._start -= 2.0
        task.advance(2)
        assert task.eta_seconds() == pytest.approx(3.0, rel=0.05)  # 1 s per step, 3 steps left


def test_rich_bar_on_a_terminal_nests():
    stream = Terminal()
    with progress(stream=stream) as outer:
        t = outer.task("compare", total=2)
        with progress(stream=stream) as inner:  # a cell's training inside a comparison: same live bar
            inner.task("train", total=3).advance(3)
        t.advance(2)
    assert "compare" in stream.getvalue()


def test_training_writes_tensorboard_scalars(tmp_path):
    pytest.importorskip("tensorboard", reason="the optional extra motorec[tensorboard] is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ds = motorec.load_dataset("synthetic-cold")
    motorec.train(
        ds,
        "bpr",
        seeds=[2026],
        out=tmp_path / "run",
        train={"epochs": 2, "progress": False},
        log={"tensorboard": str(tmp_path / "tb")},
    )
    events = EventAccumulator(str(tmp_path / "tb" / "run_seed_2026"))
    events.Reload()
    assert set(events.Tags()["scalars"]) == {"train/loss", "valid/recall@20"}
    assert [e.step for e in events.Scalars("valid/recall@20")] == [0, 1]


def test_tensorboard_missing_is_a_warning_not_an_error(monkeypatch, tmp_path):
    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith("torch.utils.tensorboard") or name.startswith("tensorboard"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    with pytest.warns(UserWarning, match=r"motorec\[tensorboard\]"):
        log = MetricLog(tmp_path / "tb")
    assert not log.active
    log.scalars(0, {"x": 1.0})
    log.close()
