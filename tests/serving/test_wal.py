import pytest

from motorec.errors import MotorecError
from motorec.serving.wal import WriteAheadLog


def test_records_survive_reopen_and_torn_tail_is_dropped(tmp_path):
    path = tmp_path / "wal.log"
    wal = WriteAheadLog(path, "bundle-a")
    for i in range(3):
        wal.append({"op": "item", "i": i})
    wal.close()
    with open(path, "ab") as f:
        f.write(b"0000abcd {\"op\": \"item\", \"i\"")  # a crash in the middle of a write
    wal = WriteAheadLog(path, "bundle-a")
    assert [r["i"] for r in wal.replay()] == [0, 1, 2]
    assert wal.truncated_bytes > 0
    wal.append({"op": "item", "i": 3})
    wal.close()
    assert [r["i"] for r in WriteAheadLog(path, "bundle-a").replay()] == [0, 1, 2, 3]


def test_corruption_in_the_middle_and_foreign_bundle_are_errors(tmp_path):
    path = tmp_path / "wal.log"
    wal = WriteAheadLog(path, "bundle-a")
    for i in range(3):
        wal.append({"op": "item", "i": i})
    wal.close()
    with pytest.raises(MotorecError, match="another bundle"):
        WriteAheadLog(path, "bundle-b")
    lines = path.read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b'"i":1', b'"i":9')  # checksum no longer matches
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(MotorecError, match="corrupt"):
        WriteAheadLog(path, "bundle-a")
