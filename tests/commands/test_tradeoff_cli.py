"""`motorec tradeoff`: the warm/cold curve of a trained run, alone or blended with a warm expert."""

from __future__ import annotations

import json

import pytest

from motorec.cli import main
from motorec.commands.tradeoff import tradeoff_report
from motorec.errors import MotorecError
from motorec.evaluation.tradeoff import WARM_ONLY_OFFSET

RUN = ["--set", "seeds=[1]", "--set", "train.epochs=2", "--set", "train.threads=1", "--set", "train.progress=false"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    for model in ("lightgcn", "vbpr"):
        assert main(["train", "--data", "synthetic-cold", "--model", model, "--out", str(root / model), *RUN]) == 0
    return root


def test_tradeoff_writes_the_curve_and_the_valid_choice(runs, tmp_path):
    out = tmp_path / "to"
    assert (
        main(
            [
                "exp",
                "tradeoff",
                str(runs / "vbpr"),
                "--warm-run",
                str(runs / "lightgcn"),
                "--out",
                str(out),
                "--offsets",
                "-100,0,100",
            ]
        )
        == 0
    )
    report = json.loads((out / "tradeoff.json").read_text())
    assert [r["offset"] for r in report["rows"]] == [-100, -100, 0, 0, 100, 100]
    first, last = report["rows"][1], report["rows"][-1]  # test rows at the two extremes
    assert first["cold_share@20"] == 0.0 and first["cold@full"] == 0.0
    assert last["cold_share@20"] > 0.99 and last["warm"] == 0.0
    assert report["valid_chosen_offsets"][0] in (-100, 0, 100)
    assert "| -100 |" in (out / "tradeoff.md").read_text()


def test_bad_offsets_and_missing_runs_are_user_errors(runs, tmp_path):
    assert main(["exp", "tradeoff", str(runs / "vbpr"), "--out", str(tmp_path / "x"), "--offsets", "a,b"]) == 2
    with pytest.raises(MotorecError, match="not found"):
        tradeoff_report(tmp_path / "nothing", [0.0])


def test_a_warm_floor_adds_the_warm_only_point_and_picks_within_it(runs, tmp_path):
    report = tradeoff_report(runs / "vbpr", [0.0, 100.0], warm_run=runs / "lightgcn", warm_floor=0.9)
    assert [r["offset"] for r in report["rows"]][:2] == [WARM_ONLY_OFFSET, WARM_ONLY_OFFSET]
    valid = {r["offset"]: r for r in report["rows"] if r["split"] == "valid"}  # one seed: its own curve
    [chosen] = report["warm_floor_offsets"]
    assert chosen != 100.0  # cold items in every slot leave no warm recall
    assert chosen is None or valid[chosen]["warm"] >= 0.9 * valid[WARM_ONLY_OFFSET]["warm"]
    assert main(["exp", "tradeoff", str(runs / "vbpr"), "--out", str(tmp_path / "x"), "--warm-floor", "1.5"]) == 2
