"""The adversarial bad-input corpus of the CLI: broken files, dangerous paths, resumes that do not
match. Every case: exit code 2, one `error:` paragraph naming the file, line or field, no
traceback, and no file anywhere under the test's folder created, changed or removed (tree
snapshots of sizes, mtimes and hashes). The service's cases are in tests/serving/."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from motorec.cli import main
from motorec.errors import MotorecError
from motorec.io import MARKER
from test_cli_bad_input import FAST, dataset, fails_cleanly, snapshot, train

# ------------------------------------------------------------------------------------- files


@pytest.mark.parametrize(
    ("inter", "needles"),
    [
        ("empty.inter", ("toy.inter", "the file is empty", "header line")),
        ("header_only.inter", ("toy.inter", "no interactions", "only its header line")),
        ("truncated.inter", ("toy.inter, line 21", "'x_label' is empty or missing")),
        ("id_1e23.inter", ("toy.inter, line 10", "'itemID'", "100000000000000000000000", "2147483646", "int32")),
        ("id_1e11.inter", ("toy.inter, line 10", "'itemID'", "100000000000", "2147483646")),
        ("sparse_user_id.inter", ("toy.inter, line 5", "userID 50000000", "only 7 distinct ids", "re-map")),
        ("unicode_digit.inter", ("toy.inter, line 7", "'itemID' must hold integers", "٣")),
        ("not_utf8.inter", ("toy.inter, line 7", "not UTF-8")),
        ("nul_byte.inter", ("toy.inter, line 7", "'itemID'", "\\x00")),
        ("extra_fields.inter", ("toy.inter, line 7", "7 tab-separated fields", "header has 5")),
        ("inf_id.inter", ("toy.inter, line 7", "'itemID' holds inf")),
    ],
)
def test_broken_interaction_files(inter, needles, tmp_path, capsys):
    fails_cleanly(train(dataset(tmp_path, inter), tmp_path / "run"), capsys, tmp_path / "run", *needles)


def test_windows_line_endings_are_read(tmp_path, capsys):
    folder = dataset(tmp_path, "crlf.inter")
    assert main(["data", "stats", str(folder), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["interactions"] == 30


def test_a_split_without_valid_rows_cannot_be_trained(tmp_path, capsys):
    folder = dataset(tmp_path)
    lines = (folder / "toy.inter").read_text().splitlines()
    (folder / "toy.inter").write_text(
        "\n".join(
            [lines[0]] + [ln.rsplit("\t", 1)[0] + "\t" + ("2" if ln.endswith("1") else ln[-1]) for ln in lines[1:]]
        )
        + "\n"
    )
    fails_cleanly(train(folder, tmp_path / "run"), capsys, tmp_path / "run", "toy.inter", "no valid interactions")


def _npy(kind: str, path: Path) -> None:
    good = np.ones((8, 4), np.float32)
    if kind == "zero_bytes":
        path.write_bytes(b"")
    elif kind == "not_npy":
        path.write_bytes(b"item,feature\n0,1.0\n")
    elif kind == "object":
        np.save(path, np.array([[1, "a"]] * 8, dtype=object), allow_pickle=True)
    elif kind == "truncated":
        np.save(path, good)
        path.write_bytes(path.read_bytes()[:-40])
    elif kind == "damaged_header":
        np.save(path, good)
        data = bytearray(path.read_bytes())
        data[20:40] = b"#" * 20
        path.write_bytes(bytes(data))
    elif kind == "scalar":
        np.save(path, np.float32(1))
    elif kind == "3d":
        np.save(path, np.ones((8, 2, 2), np.float32))
    elif kind == "int":
        np.save(path, np.ones((8, 4), np.int64))
    elif kind == "complex":
        np.save(path, np.ones((8, 4), np.complex64))


@pytest.mark.parametrize(
    ("kind", "needle"),
    [
        ("zero_bytes", "is empty (0 bytes)"),
        ("not_npy", "not a .npy file"),
        ("object", "dtype object"),
        ("truncated", "is truncated"),
        ("damaged_header", "header is damaged"),
        ("scalar", "2-d matrix"),
        ("3d", "2-d matrix"),
        ("int", "floating point"),
        ("complex", "floating point"),
    ],
)
def test_broken_feature_files(kind, needle, tmp_path, capsys):
    folder = dataset(tmp_path)
    _npy(kind, folder / "text_feat.npy")
    fails_cleanly(train(folder, tmp_path / "run"), capsys, tmp_path / "run", "text_feat.npy", needle)


def test_broken_feature_file_in_a_features_only_folder(tmp_path, capsys):
    folder = tmp_path / "feats"
    folder.mkdir()
    _npy("zero_bytes", folder / "text_feat.npy")
    fails_cleanly(
        ["tokenize", "--data", str(folder), "--tokenizer", "pq", "--out", str(tmp_path / "tok")],
        capsys,
        tmp_path / "tok",
        "text_feat.npy",
        "is empty",
    )


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ('{"0": [1, 2', "toy.inter.json, line 1: invalid JSON"),
        ("[[1, 2]]", "expected a non-empty JSON object"),
        ('{"0": [1, 99999999999]}', "ids at most 2147483646"),
        ('{"0": [1, 5000000]}', "item id 5000000 implies"),
        ('{"x": [1, 2]}', "user 'x'"),
        ('{"0": [1, true]}', "list of item ids"),
        ('{"0": []}', "no interactions"),
    ],
)
def test_broken_lcrec_files(content, needle, tmp_path, capsys):
    folder = tmp_path / "lc"
    folder.mkdir()
    (folder / "toy.inter.json").write_text(content)
    fails_cleanly(["data", "stats", str(folder)], capsys, tmp_path / "x", needle, root=tmp_path)


def test_cold_item_list_with_foreign_digits(tmp_path, capsys):
    folder = dataset(tmp_path)
    (folder / "toy.cold_items.txt").write_text("1\n٣\n")
    fails_cleanly(train(folder, tmp_path / "run"), capsys, tmp_path / "run", "toy.cold_items.txt, line 2", "٣")


# --------------------------------------------------------------------- trained runs, reused


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[Path, Path]:
    """(data folder, finished bpr run) trained once; tests copy them."""
    root = tmp_path_factory.mktemp("finished")
    folder = dataset(root, features=np.random.default_rng(0).normal(size=(8, 6)).astype(np.float32))
    run = root / "run"
    assert main(train(folder, run)) == 0
    return folder, run


@pytest.fixture()
def copied(finished, tmp_path) -> tuple[Path, Path]:
    folder, run = finished
    shutil.copytree(folder, tmp_path / "toy")
    shutil.copytree(run, tmp_path / "run")
    marker = json.loads((tmp_path / "run" / MARKER).read_text())
    marker["identity"]["data"] = str((tmp_path / "toy").resolve())
    (tmp_path / "run" / MARKER).write_text(json.dumps(marker))
    res = json.loads((tmp_path / "run" / "results.json").read_text())
    res["config"]["data"]["path"] = str((tmp_path / "toy").resolve())
    (tmp_path / "run" / "results.json").write_text(json.dumps(res))
    return tmp_path / "toy", tmp_path / "run"


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ('{"config": {"data": {"pa', "results.json, line 1: not valid JSON"),
        ('{"valid": {}}', "field 'config'"),
        ('{"config": {"model_name": "bpr", "seeds": [], "data": {"path": "x"}}}', "field 'config'"),
        ("[]", "field 'config'"),
        ("\udcff", "not a results file"),
    ],
)
@pytest.mark.parametrize("command", ["evaluate", "export", "tradeoff"])
def test_damaged_results_json(copied, command, content, needle, tmp_path, capsys):
    _, run = copied
    (run / "results.json").write_bytes(content.encode("utf-8", "surrogateescape"))
    argv = {
        "evaluate": ["evaluate", str(run)],
        "export": ["export", str(run), "--out", str(tmp_path / "b")],
        "tradeoff": ["exp", "tradeoff", str(run), "--out", str(tmp_path / "t")],
    }[command]
    fails_cleanly(argv, capsys, run, str(run / "results.json"), needle, root=tmp_path)


def test_damaged_checkpoint_and_unknown_seed(copied, tmp_path, capsys):
    _, run = copied
    fails_cleanly(["evaluate", str(run), "--seed", "99"], capsys, run, "seed 99", "seeds [1]", root=tmp_path)
    (run / "seed_1" / "checkpoint.pt").write_bytes(b"PK\x03\x04 not a checkpoint")
    fails_cleanly(
        ["evaluate", str(run)], capsys, run, "checkpoint.pt", "not a readable motorec checkpoint", root=tmp_path
    )


def test_evaluate_and_export_from_another_working_directory(copied, tmp_path, monkeypatch, capsys):
    _folder, run = copied
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["evaluate", str(run)]) == 0
    # a run made before data paths were stored absolute: relative to the folder it was trained in
    res = json.loads((run / "results.json").read_text())
    res["config"]["data"]["path"] = "toy"
    res.pop("cwd", None)
    (run / "results.json").write_text(json.dumps(res))
    marker = json.loads((run / MARKER).read_text())
    (run / MARKER).unlink()
    fails_cleanly(
        ["evaluate", str(run)],
        capsys,
        run,
        "config.data.path 'toy' is relative",
        "run this command from that folder",
        root=tmp_path,
    )
    res["cwd"] = str(tmp_path)  # recorded: found there
    (run / "results.json").write_text(json.dumps(res))
    assert main(["evaluate", str(run)]) == 0
    res.pop("cwd")
    (run / "results.json").write_text(json.dumps(res))
    (run / MARKER).write_text(json.dumps({**marker, "cwd": str(tmp_path)}))  # the marker's cwd serves too
    assert main(["evaluate", str(run)]) == 0


def test_a_broken_saved_tokenizer(copied, tmp_path, capsys):
    _, run = copied
    tok = tmp_path / "tok"
    assert (
        main(
            [
                "tokenize",
                "--data",
                str(tmp_path / "toy"),
                "--tokenizer",
                "pq",
                "--out",
                str(tok),
                "--set",
                "codebook_size=2",
                "--set",
                "subspaces=2",
                "--json",
            ]
        )
        == 0
    )
    capsys.readouterr()
    data = (tok / "tokenizer.safetensors").read_bytes()
    (tok / "tokenizer.safetensors").write_bytes(data[: len(data) // 2])
    fails_cleanly(
        ["export", str(run), "--out", str(tmp_path / "b"), "--tokenizer", str(tok)],
        capsys,
        run,
        "tokenizer.safetensors",
        "damaged",
        root=tmp_path,
    )
    (tok / "tokenizer.json").write_text("[1, 2")
    fails_cleanly(
        ["export", str(run), "--out", str(tmp_path / "b"), "--tokenizer", str(tok)],
        capsys,
        run,
        "tokenizer.json",
        "not valid JSON",
        root=tmp_path,
    )


# ------------------------------------------------------------------------------------- paths


def test_out_that_cannot_be_a_folder(tmp_path, capsys):
    folder = dataset(tmp_path)
    (tmp_path / "afile").write_text("x")
    (tmp_path / "loop1").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop1")
    for out, needle in [
        (tmp_path / "afile", "is a file, not a folder"),
        (tmp_path / "afile" / "run", "is a file, so no folder can be created under it"),
        (tmp_path / "loop1", "cannot be resolved"),
        (Path("/proc/motorec-run"), "cannot create the folder"),
    ]:
        fails_cleanly(train(folder, out), capsys, tmp_path / "run", str(out), needle, root=tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_out_under_a_read_only_folder(tmp_path, capsys):
    folder = dataset(tmp_path)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        fails_cleanly(train(folder, locked / "run"), capsys, locked / "run", "not writable", root=tmp_path)
    finally:
        locked.chmod(0o700)


def test_overwrite_never_deletes_the_data_or_anything_motorec_did_not_write(tmp_path, capsys):
    folder = dataset(tmp_path)
    (tmp_path / "link").symlink_to(folder)
    for out in (folder, tmp_path, tmp_path / "link"):  # the data folder, its parent, a link to it
        fails_cleanly(
            train(folder, out, "--overwrite"), capsys, out, "holds files motorec did not write", root=tmp_path
        )
    assert main(["train", "--data", str(folder), "--model", "bpr", "--out", str(tmp_path / "run"), *FAST]) == 0
    cfg = tmp_path / "run" / "edited.yaml"  # an input inside the run it would replace
    cfg.write_text("train:\n  lr: 0.01\n")
    fails_cleanly(
        train(folder, tmp_path / "run", "--overwrite", "--config", str(cfg)),
        capsys,
        tmp_path / "run",
        "edited.yaml is an input of this command",
        root=tmp_path,
    )
    fails_cleanly(
        train(folder, tmp_path / "run", "--overwrite", "--resume"),
        capsys,
        tmp_path / "run",
        "exclude each other",
        root=tmp_path,
    )


def test_export_never_replaces_its_run_a_foreign_folder_or_a_served_bundle(copied, tmp_path, capsys):
    _, run = copied
    fails_cleanly(
        ["export", str(run), "--out", str(run), "--overwrite"],
        capsys,
        run,
        "is a motorec run folder",
        "only replaces bundle folders",
        root=tmp_path,
    )
    foreign = tmp_path / "docs"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("keep")
    fails_cleanly(
        ["export", str(run), "--out", str(foreign), "--overwrite"],
        capsys,
        foreign,
        "holds files motorec did not write",
        root=tmp_path,
    )
    bundle = tmp_path / "bundle"
    assert main(["export", str(run), "--out", str(bundle)]) == 0
    capsys.readouterr()
    (bundle / "state").mkdir()
    (bundle / "state" / "wal.log").write_text("acknowledged items\n")
    fails_cleanly(
        ["export", str(run), "--out", str(bundle), "--overwrite"],
        capsys,
        bundle,
        "state",
        "move it away first",
        root=tmp_path,
    )
    (bundle / "state" / "wal.log").unlink()
    assert main(["export", str(run), "--out", str(bundle), "--overwrite"]) == 0


def test_commands_never_replace_their_inputs(copied, tmp_path, capsys):
    folder, run = copied
    fails_cleanly(
        ["data", "split", str(folder), "--out", str(folder / "toy.inter")],
        capsys,
        folder,
        "would replace a file inside the input",
        root=tmp_path,
    )
    fails_cleanly(
        ["evaluate", str(run), "--export", str(run / "results.json")],
        capsys,
        run,
        "--export",
        "would replace a file inside the input",
        root=tmp_path,
    )
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.md").write_text("keep")
    fails_cleanly(
        ["tokenize", "--data", str(folder), "--tokenizer", "pq", "--out", str(foreign), "--overwrite"],
        capsys,
        foreign,
        "holds files motorec did not write",
        root=tmp_path,
    )
    fails_cleanly(
        ["exp", "compare", "--models", "bpr", "--datasets", str(folder), "--out", str(foreign)],
        capsys,
        foreign,
        "holds files motorec did not write",
        root=tmp_path,
    )


# ------------------------------------------------------------------------------------ resume


def test_resume_refuses_another_model_or_config_and_names_the_difference(copied, tmp_path, capsys):
    folder, run = copied
    results = (run / "results.json").read_bytes()
    fails_cleanly(
        train(folder, run, "--resume", model="lightgcn"), capsys, run, 'model: "bpr" -> "lightgcn"', root=tmp_path
    )
    fails_cleanly(
        train(folder, run, "--resume", "--set", "train.lr=0.05"),
        capsys,
        run,
        "config.train.lr: 0.001 -> 0.05",
        root=tmp_path,
    )
    fails_cleanly(
        train(folder, run, "--resume", "--set", "train.epochs=3"),
        capsys,
        run,
        "config.train.epochs: 2 -> 3 (accepted with --allow-epochs-change)",
        root=tmp_path,
    )
    (tmp_path / "o").mkdir()
    other = dataset(tmp_path / "o")
    fails_cleanly(train(other, run, "--resume"), capsys, run, "data:", root=tmp_path)
    assert (run / "results.json").read_bytes() == results
    # run-only keys may change; an accepted epochs change is recorded in the marker
    assert (
        main(
            train(
                folder, run, "--resume", "--set", "train.epochs=3", "--allow-epochs-change", "--set", "train.threads=2"
            )
        )
        == 0
    )
    assert json.loads((run / MARKER).read_text())["history"][-1]["changed"] == ["config.train.epochs: 2 -> 3"]


def test_resume_into_a_foreign_folder_is_refused(tmp_path, capsys):
    folder = dataset(tmp_path)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "a.txt").write_text("x")
    fails_cleanly(train(folder, foreign, "--resume"), capsys, foreign, "only continues run folders", root=tmp_path)


def test_a_run_that_fails_before_writing_leaves_nothing_and_an_overwrite_restores_the_old_run(
    copied, tmp_path, monkeypatch, capsys
):
    import motorec.training.runner as runner

    folder, run = copied

    def broken_fit(*args, **kwargs):
        raise MotorecError("simulated failure before the first checkpoint")

    monkeypatch.setattr(runner, "fit", broken_fit)
    fails_cleanly(
        train(folder, tmp_path / "new" / "run"), capsys, tmp_path / "new" / "run", "simulated failure", root=tmp_path
    )
    assert not (tmp_path / "new").exists()
    before = snapshot(run)
    assert main(train(folder, run, "--overwrite")) == 2
    assert snapshot(run) == before and not [p for p in tmp_path.iterdir() if "replaced" in p.name]
