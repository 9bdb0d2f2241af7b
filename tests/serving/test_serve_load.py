"""The load and fault benchmark with short bounds: a real `motorec serve` process, kill -9, replay."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_short_load_then_kill9_loses_no_acknowledged_item(bundle_dir, tmp_path):
    out = tmp_path / "load"
    cmd = [
        sys.executable,
        str(REPO / "benchmarks" / "serve_load.py"),
        "--bundle",
        str(bundle_dir),
        "--duration",
        "3",
        "--rate",
        "40",
        "--warmup",
        "0.5",
        "--fault-duration",
        "3",
        "--out",
        str(out),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    res = json.loads(out.with_suffix(".json").read_text())
    load, fault = res["load"], res["fault"]
    assert load["errors"] == 0, load["first_errors"]
    assert load["recommend"]["ok"] > 50 and load["ingest"]["ok"] > 0
    assert load["ingest_to_recommendable"]["measured"] > 0
    assert fault["failed_during_fault_phase"] > 0  # the kill really happened mid-load
    assert fault["acknowledged_ingests_total"] > load["ingest"]["ok"]
    assert fault["lost_acknowledged_items"] == 0, fault["lost_examples"]
    # logged-then-killed-before-the-reply records may exceed the acknowledged ones, never the reverse
    assert fault["replayed_records"] >= fault["acknowledged_ingests_total"]
    assert "acknowledged items lost" in out.with_suffix(".md").read_text()
