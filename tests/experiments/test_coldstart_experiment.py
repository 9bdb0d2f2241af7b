"""The cold-start benchmark on synthetic data: tuned per dataset on valid, one table, resumable, rows addable."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from motorec.errors import MotorecError
from motorec.experiments.coldstart import load_plan, run_coldstart

FAST = ["train.epochs=2", "train.threads=1", "train.progress=false", "device=cpu"]


@pytest.fixture()
def plan(tmp_path):
    path = tmp_path / "plan.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "datasets": ["synthetic-cold"],
                "seeds": [1, 2],
                "tune_seed": 1,
                "paired": [{"reference": "content_profile", "group": "cold@cold"}],
                "rows": {
                    "content_profile": {"model": "content_profile"},
                    "bpr-l2": {"model": "bpr", "set": {"model.reg_weight": 0.01}},
                    "deepmusic": {
                        "model": "deepmusic",
                        "set": {"model.backbone.model": "bpr", "model.backbone.set": ["train.epochs=2"]},
                        "grid": {"model.hidden": [[8], [16]]},
                    },
                },
            }
        )
    )
    return path


def test_tunes_on_valid_then_one_table_over_the_seeds(tmp_path, plan):
    out, runs = tmp_path / "out", tmp_path / "runs"
    result = run_coldstart(
        out,
        runs,
        plan,
        data_root=".",
        rows=["content_profile", "deepmusic"],
        overrides=[*FAST, f"data.cache_dir={tmp_path / 'cache'}"],
    )
    tuning = result["tuning"]["synthetic-cold"]
    assert tuning["content_profile"]["points"] == 0 and tuning["deepmusic"]["points"] == 2
    trials = tuning["deepmusic"]["trials"]
    best = max(trials, key=lambda t: t["valid_recall@20"])
    assert tuning["deepmusic"]["chosen_point"] == best["point"]  # chosen on valid
    tuned = yaml.safe_load((out / "tuned" / "synthetic-cold" / "deepmusic.yaml").read_text())
    assert tuned["model"]["hidden"] == best["point"]["model.hidden"] and tuned["model"]["backbone"]["model"] == "bpr"
    rows = json.loads((out / "table" / "compare.json").read_text())
    assert [r["model"] for r in rows] == ["content_profile", "deepmusic"]
    deepmusic = rows[1]
    assert deepmusic["status"] == "ok" and deepmusic["seeds"] == [1, 2]
    assert deepmusic["backbone_s_per_run"] > 0 and deepmusic["wall_s_per_run"] > 0
    assert set(deepmusic["test"]) == {"all", "warm", "cold@full", "cold@cold"}
    md = (out / "table" / "compare.md").read_text()
    assert "cold@cold N@20" in md and "backbone s/run" in md
    assert not any(p.suffix == ".pt" for p in out.rglob("*"))  # only small files in OUT
    # the table's tuning seed is the chosen trial's run, copied rather than trained again
    cell = json.loads((runs / "compare" / "synthetic-cold" / "deepmusic" / "seed_1" / "result.json").read_text())
    trial = json.loads((Path(tuning["deepmusic"]["chosen_run"]) / "seed_1" / "result.json").read_text())
    assert cell == trial
    # paired per-seed difference against the content profile, with its standard error and verdict
    paired = result["paired"]
    assert [(p["model"], p["reference"], p["group"]) for p in paired] == [("deepmusic", "content_profile", "cold@cold")]
    ref = [
        json.loads((runs / "compare" / "synthetic-cold" / m / f"seed_{s}" / "result.json").read_text())["test"][
            "cold@cold"
        ]["recall@20"]
        for m in ("deepmusic", "content_profile")
        for s in (1, 2)
    ]
    assert paired[0]["mean_difference"] == pytest.approx((ref[0] - ref[2] + ref[1] - ref[3]) / 2)
    assert (
        paired[0]["verdict"] in {"win", "level", "loss"} and "Paired differences" in (out / "coldstart.md").read_text()
    )
    # the summary says where it ran and on which split
    prov = json.loads((out / "coldstart.json").read_text())["provenance"]
    run = json.loads((runs / "compare" / "synthetic-cold" / "deepmusic" / "results.json").read_text())
    assert prov["split_sha256"]["synthetic-cold"] == run["split_sha256"] and prov["machine"]["device"]
    # a row added later joins the same table; finished rows are read back, not retrained
    run_coldstart(
        out, runs, plan, data_root=".", rows=["bpr-l2"], overrides=[*FAST, f"data.cache_dir={tmp_path / 'cache'}"]
    )
    rows = json.loads((out / "table" / "compare.json").read_text())
    assert [r["model"] for r in rows] == ["content_profile", "deepmusic", "bpr-l2"]
    assert yaml.safe_load((out / "tuned" / "synthetic-cold" / "bpr-l2.yaml").read_text())["model"]["reg_weight"] == 0.01
    assert rows[2]["config"].endswith("bpr-l2.yaml")
    # --no-train tabulates what is finished and trains nothing
    again = run_coldstart(out, runs, plan, data_root=".", overrides=FAST, train=False)
    assert [r["status"] for r in again["table"]] == ["ok", "ok", "ok"]
    # each row keeps every seed's test figures, so the table pairs seeds without the runs behind it
    assert rows[1]["per_seed"]["1"]["cold@cold"]["recall@20"] == pytest.approx(ref[0])
    shutil.rmtree(runs / "compare")
    kept = run_coldstart(out, runs, plan, data_root=".", overrides=FAST, train=False)
    assert [r["status"] for r in kept["table"]] == ["ok", "ok", "ok"]
    assert kept["paired"] == again["paired"]
    assert [p for p in kept["paired"] if p["model"] == "deepmusic"] == paired


def test_plan_errors_name_the_problem(tmp_path, plan):
    with pytest.raises(MotorecError, match="unknown rows nosuch"):
        run_coldstart(tmp_path / "o", tmp_path / "r", plan, data_root=".", rows=["nosuch"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("datasets: []\nseeds: [1]\ntune_seed: 1\nrows: {x: {grid: {}}}\n")
    with pytest.raises(MotorecError, match="row 'x' needs a 'model'"):
        load_plan(bad)
    assert set(load_plan()["rows"]) >= {"content_profile", "lightgcn", "lightgcn-motor", "aldi", "motorec"}
