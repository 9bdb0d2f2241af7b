"""CLI plumbing: exit codes and the model listing."""

from __future__ import annotations

from motorec.cli import main


def test_models_lists_graph_baselines_without_content_path(capsys):
    assert main(["models"]) == 0
    lines = {line.split("│")[1].strip(): line for line in capsys.readouterr().out.splitlines() if line.count("│") > 2}
    assert "lightgcn" in lines and "bpr" in lines
    assert " no " in lines["lightgcn"]


def test_usage_errors_exit_2(capsys):
    assert main(["train", "--model", "bpr"]) == 2  # --data and --out missing
    assert "Missing option" in capsys.readouterr().err
    assert main(["no-such-command"]) == 2


def test_evaluate_on_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "results.json" in err and "Traceback" not in err
