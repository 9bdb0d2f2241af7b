"""The write-ahead log: torn tails dropped and reported, acknowledged damage a hard error, repair,
compaction that replays to the same records, and crash safety at every step of a compaction."""

import os
from pathlib import Path

import pytest

from motorec.errors import MotorecError
from motorec.serving import wal as wal_mod
from motorec.serving.wal import SYNCED_SUFFIX, WalDamaged, WalUnavailable, WriteAheadLog


def written(path, n=3, bundle="bundle-a"):
    wal = WriteAheadLog(path, bundle)
    for i in range(n):
        wal.append({"op": "item", "i": i})
    wal.close()
    return path.read_bytes()


def ids(path, **kw):
    wal = WriteAheadLog(path, "bundle-a", **kw)
    out = [r.get("i") for r in wal.replay()]
    wal.close()
    return out, wal


def test_records_survive_reopen_and_torn_tail_is_dropped_and_reported(tmp_path):
    path = tmp_path / "wal.log"
    written(path)
    with open(path, "ab") as f:
        f.write(b'0000abcd {"op": "item", "i"')  # a crash in the middle of a write
    got, wal = ids(path)
    assert got == [0, 1, 2]
    assert wal.recovery.torn_tail_bytes == 27 and "torn" in wal.recovery.summary()
    assert Path(wal.recovery.torn_tail_file).read_bytes() == b'0000abcd {"op": "item", "i"'
    assert wal.status()["torn_tail_dropped_bytes"] == 27
    wal = WriteAheadLog(path, "bundle-a")
    list(wal.replay())
    wal.append({"op": "item", "i": 3})
    wal.close()
    assert ids(path)[0] == [0, 1, 2, 3]


def _lines(data):
    return data.split(b"\n")


@pytest.mark.parametrize("damage", ["flip_last", "zero_middle", "cut_inside_middle", "bad_json_last"])
def test_damage_to_a_complete_record_is_a_hard_named_error_and_the_file_is_untouched(tmp_path, damage):
    path = tmp_path / "wal.log"
    data = bytearray(written(path, 4))
    lines = _lines(bytes(data))
    start_last = len(data) - len(lines[-2]) - 1
    if damage == "flip_last":
        data[start_last + 20] ^= 0x01
        record = 5
    elif damage == "zero_middle":  # zeroed bytes across a newline: two records merge into one bad line
        at = len(lines[0]) + 1 + len(lines[1]) - 5
        data[at : at + 10] = b"\0" * 10
        record = 2
    elif damage == "cut_inside_middle":  # bytes missing inside the log, not at its end
        at = len(lines[0]) + 1 + 15
        del data[at : at + 7]
        record = 2
    else:
        data[start_last + 9 : start_last + 10] = b"["
        record = 5
    path.write_bytes(bytes(data))
    with pytest.raises(WalDamaged, match=rf"record {record} \(byte \d+\) is damaged.*--repair-wal"):
        WriteAheadLog(path, "bundle-a")
    assert path.read_bytes() == bytes(data)


@pytest.mark.parametrize("cut", ["inside_last", "whole_last"])
def test_a_cut_acknowledged_tail_is_an_error_not_a_torn_write(tmp_path, cut):
    path = tmp_path / "wal.log"
    data = written(path, 3)
    last = len(_lines(data)[-2]) + 1
    path.write_bytes(data[: -last // 2] if cut == "inside_last" else data[:-last])
    with pytest.raises(WalDamaged, match="acknowledged up to byte"):
        WriteAheadLog(path, "bundle-a")
    # without the record of what was acknowledged the same bytes are indistinguishable from a torn write
    os.unlink(str(path) + SYNCED_SUFFIX)
    got, wal = ids(path)
    assert got == [0, 1] and not wal.recovery.acknowledged_bytes_checked


def test_repair_moves_the_damaged_end_aside_and_says_what_it_kept(tmp_path):
    path = tmp_path / "wal.log"
    data = bytearray(written(path, 5))
    lines = _lines(bytes(data))
    at = sum(len(x) + 1 for x in lines[:3]) + 12  # inside record 4 (the header is record 1)
    data[at] ^= 0x20
    path.write_bytes(bytes(data))
    got, wal = ids(path, repair=True)
    assert got == [0, 1]
    rep = wal.recovery.repaired
    assert rep["records_kept"] == 2 and rep["record"] == 4 and "kept 2 records" in wal.recovery.summary()
    assert Path(rep["moved_to"]).read_bytes() == bytes(data[sum(len(x) + 1 for x in lines[:3]) :])
    assert ids(path)[0] == [0, 1]  # repaired log opens cleanly


def test_not_a_log_and_another_bundles_log_are_refused_untouched(tmp_path):
    path = tmp_path / "wal.log"
    written(path)
    with pytest.raises(MotorecError, match="another bundle"):
        WriteAheadLog(path, "bundle-b")
    for foreign in (b'{"format": "motorec-bundle"}\n', b"\x89PNG\r\n\x1a\n", b"no newline at all"):
        other = tmp_path / "manifest.json"
        other.write_bytes(foreign)
        with pytest.raises(MotorecError, match="not a motorec write-ahead log"):
            WriteAheadLog(other, "bundle-a", repair=True)
        assert other.read_bytes() == foreign
    with pytest.raises(MotorecError, match="not a file"):
        WriteAheadLog(tmp_path, "bundle-a")


def test_a_torn_header_starts_a_new_log(tmp_path):
    path = tmp_path / "wal.log"
    path.write_bytes(b'1234abcd {"op":"header","form')
    wal = WriteAheadLog(path, "bundle-a")
    assert list(wal.replay()) == [] and wal.recovery.torn_tail_bytes == 29
    wal.append({"op": "item", "i": 0})
    wal.close()
    assert ids(path)[0] == [0]


def interactions_log(path, **kw):
    wal = WriteAheadLog(path, "bundle-a", **kw)
    expected = []
    for step in range(40):
        if step % 5 == 0:
            rec = {"op": "item", "id": f"it{step}", "i": step}
        else:
            rec = {"op": "interactions", "user": f"u{step % 3}", "items": [f"it{step % 7}", f"it{step % 4}"], "t": step}
        wal.append(rec)
        expected.append(rec)
    return wal, expected


def state(records):
    """What replaying records builds: items in order, each user's items in first-seen order."""
    items, users = [], {}
    for r in records:
        if r["op"] == "item":
            items.append(r["id"])
        else:
            users.setdefault(r["user"], {}).update(dict.fromkeys(r["items"]))
    return items, {u: list(v) for u, v in users.items()}


def test_compaction_replays_to_the_same_state_and_shrinks_the_log(tmp_path):
    path = tmp_path / "wal.log"
    wal, expected = interactions_log(path)
    before = path.stat().st_size
    gen = wal.generation
    info = wal.compact()
    assert info["bytes_after"] < before == info["bytes_before"] and wal.generation != gen
    assert wal.records == 8 + 3  # 8 items, 3 users merged
    wal.append({"op": "interactions", "user": "u9", "items": ["it0"], "t": 99})
    wal.close()
    again = WriteAheadLog(path, "bundle-a")
    replayed = list(again.replay())
    assert again.recovery.acknowledged_bytes_checked and not again.recovery.summary()
    assert state(replayed) == state([*expected, {"op": "interactions", "user": "u9", "items": ["it0"]}])
    assert [r["id"] for r in replayed if r["op"] == "item"] == [f"it{s}" for s in range(0, 40, 5)]


def test_compaction_triggers_by_size_and_by_records(tmp_path):
    wal, _ = interactions_log(tmp_path / "a.log", compact_bytes=0, compact_records=0)
    assert not wal.should_compact()
    wal, _ = interactions_log(tmp_path / "b.log", compact_bytes=500)
    assert wal.should_compact()
    wal.compact()
    assert not wal.should_compact()  # must grow again by max(500 bytes, its compacted size)
    wal, _ = interactions_log(tmp_path / "c.log", compact_bytes=0, compact_records=30)
    assert wal.should_compact()


@pytest.mark.parametrize("crash_at", ["write", "fsync", "rename", "after_rename"])
def test_a_crash_at_any_step_of_compaction_loses_nothing(tmp_path, monkeypatch, crash_at):
    """The steps: write the snapshot to a temporary file, fsync it, rename it over the log, record
    the new generation. A crash is simulated by an exception at the step, then a fresh open."""
    path = tmp_path / "wal.log"
    wal, expected = interactions_log(path)

    class Crash(BaseException):
        pass

    def crash(*args):
        raise Crash()

    target = {
        "write": (wal_mod, "frame"),
        "fsync": (os, "fsync"),
        "rename": (os, "replace"),
        "after_rename": (os, "pwrite"),
    }[crash_at]
    monkeypatch.setattr(*target, crash)
    with pytest.raises(Crash):
        wal.compact()
    monkeypatch.undo()
    again = WriteAheadLog(path, "bundle-a")
    assert state(list(again.replay())) == state(expected)
    assert not list(tmp_path.glob("*.compact.tmp"))
    assert not again.recovery.repaired


def test_a_failed_compaction_keeps_the_old_log_and_is_reported(tmp_path, monkeypatch):
    path = tmp_path / "wal.log"
    wal, expected = interactions_log(path, compact_bytes=100)
    monkeypatch.setattr(os, "replace", lambda a, b: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    wal.compact_if_due()
    assert "No space left" in wal.status()["last_compaction_error"] and wal.compactions == 0
    monkeypatch.undo()
    wal.append({"op": "item", "id": "late", "i": 99})
    wal.close()
    assert state(list(WriteAheadLog(path, "bundle-a").replay())) == state([*expected, {"op": "item", "id": "late"}])


def test_a_failed_write_stops_further_writes(tmp_path, monkeypatch):
    path = tmp_path / "wal.log"
    wal = WriteAheadLog(path, "bundle-a")
    monkeypatch.setattr(os, "fdatasync", lambda fd: (_ for _ in ()).throw(OSError(5, "Input/output error")))
    with pytest.raises(WalUnavailable, match="nothing of this request was acknowledged"):
        wal.append({"op": "item", "i": 0})
    monkeypatch.undo()
    with pytest.raises(WalUnavailable, match="restart"):
        wal.append({"op": "item", "i": 1})
    assert wal.status()["write_error"] == "Input/output error"


def test_an_emptied_log_is_an_error_a_removed_one_starts_afresh(tmp_path):
    path = tmp_path / "wal.log"
    written(path, 2)
    path.write_bytes(b"")
    with pytest.raises(WalDamaged, match=r"is empty, but .* bytes of it were acknowledged"):
        WriteAheadLog(path, "bundle-a")
    got, wal = ids(path, repair=True)
    assert got == [] and wal.recovery.repaired["reason"] == "the log was emptied"
    path.unlink()  # moved aside on purpose: a new log, no complaint
    got, wal = ids(path)
    assert got == [] and not wal.recovery.summary()
