"""Acceptance: SIGKILL the service at random moments of mixed ingest + compaction, 20 times; after
each restart every acknowledged write is present (benchmarks/serve_crash.py with CI bounds)."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_twenty_sigkills_during_ingest_and_compaction_lose_nothing(bundle_dir, tmp_path):
    out = tmp_path / "crash"
    cmd = [
        sys.executable,
        str(REPO / "benchmarks" / "serve_crash.py"),
        "--bundle",
        str(bundle_dir),
        "--cycles",
        "20",
        "--min-run",
        "0.15",
        "--max-run",
        "0.5",
        "--workdir",
        str(tmp_path / "work"),
        "--out",
        str(out),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=REPO)
    res = json.loads(out.with_suffix(".json").read_text())
    s = res["summary"]
    assert proc.returncode == 0, (s, res["failures"], proc.stderr[-2000:])
    assert s["kills"] == 20 and s["restarts_checked"] == 21 and s["failed_restarts"] == 0
    assert s["acknowledged_items"] > 50 and s["acknowledged_interaction_pairs"] > 100
    assert s["explicit_compactions_acknowledged"] > 0
    assert s["lost_acknowledged_writes"] == 0 and s["torn_tail_reports_wrong"] == 0
    assert all(c["service_items_equal_log"] for c in res["cycles"])
    assert res["cycles"][-1]["final_items_not_served"] == 0
    assert s["log_generations_seen_at_kills"] >= 10  # compactions happened in most cycles (each starts a generation)
