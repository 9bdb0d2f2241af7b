"""Token meaning: TF-IDF words against the catalogue, token parsing, and `motorec explain`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from motorec.cli import main
from motorec.errors import MotorecError
from motorec.tokenizers.base import TokenSlot
from motorec.tokenizers.meaning import TokenExplainer, TokenIndex, Vocabulary, parse_token

CATALOGUE = [
    "A space war between the rebels and the empire. A film.",
    "The empire strikes back in space. A film.",
    "A quiet love story in Paris. A film.",
    "Love and war in a small town. A film.",
    "A detective solves a crime. A film.",
]


def test_typical_words_prefer_words_rare_in_the_catalogue():
    vocab = Vocabulary(CATALOGUE)
    words = [w["word"] for w in vocab.typical(CATALOGUE[:2])]
    assert words[:2] == ["empire", "space"]  # in both texts, in 2 of 5 catalogue texts
    assert "film" not in words  # in every catalogue text: idf 0
    assert "war" not in words  # in only one of the two texts
    assert vocab.typical([CATALOGUE[4]])[0]["items"] == 1  # a single text: its own words count


def test_parse_token():
    assert parse_token("text:0:17") == ("text", 0, 17)
    assert parse_token("a:b:2:3") == ("a:b", 2, 3)
    for bad in ("text:0", "text:x:1", ":0:1", "text:0:-1"):
        with pytest.raises(MotorecError, match="MODALITY:LEVEL:CODE"):
            parse_token(bad)


def test_explainer_lists_members_in_order_and_checks_codes():
    index = TokenIndex([TokenSlot("text", 0, 4), TokenSlot("text", 1, 4, kind="suffix")])
    index.add_many(np.arange(5), np.array([[1, 0], [1, 1], [2, 0], [3, 0], [1, 2]]))
    explainer = TokenExplainer(
        index,
        [f"i{i}" for i in range(5)],
        [f"t{i}" for i in range(5)],
        CATALOGUE,
        Vocabulary(CATALOGUE),
        keep=lambda i: i != 4,
        order=lambda i: -i,
    )
    meaning = explainer.token("text", 0, 1)
    assert [i["id"] for i in meaning["items"]] == ["i1", "i0"] and meaning["n_items"] == 2
    item = explainer.item(0, np.array([1, 0]))
    assert item["tokens"][0]["items"] == [{"id": "i1", "title": "t1"}]
    assert "items" not in item["tokens"][1]  # a suffix slot is a counter, not content
    with pytest.raises(MotorecError, match="outside codebook"):
        explainer.token("text", 0, 4)
    with pytest.raises(MotorecError, match="no token slot"):
        explainer.token("image", 0, 1)


def test_explain_motor_run_names_pq_tokens(synthetic_runs):
    run = synthetic_runs["motor"]
    codes, slots = run.model.token_table()
    assert codes.shape == (run.dataset.n_items, len(slots)) and all(s.kind == "code" for s in slots)
    result = run.explain(item=7)
    assert [(t["modality"], t["level"], t["code"]) for t in result["tokens"]] == [
        (s.modality, s.level, int(c)) for s, c in zip(slots, codes[7])
    ]
    for t in result["tokens"]:
        col = next(c for c, s in enumerate(slots) if (s.modality, s.level) == (t["modality"], t["level"]))
        assert all(codes[i["item"], col] == t["code"] and i["train_interactions"] > 0 for i in t["items"])


def test_explain_cli(synthetic_runs, capsys):
    run_dir = str(synthetic_runs["motorec"].dir)
    assert main(["explain", run_dir, "--item", "3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Space story 3 (id 3") and "words:" in out
    assert main(["explain", run_dir, "--token", "text:0:5", "--json"]) == 0
    meaning = json.loads(capsys.readouterr().out)
    assert (meaning["modality"], meaning["level"], meaning["code"]) == ("text", 0, 5)
    assert main(["explain", run_dir, "--token", "text:zero:5"]) == 2
    assert main(["explain", run_dir]) == 2
    assert main(["explain", run_dir, "--item", "no-such-item"]) == 2
    assert main(["explain", str(synthetic_runs["lightgcn"].dir), "--item", "3"]) == 2
    assert "reads no item tokens" in capsys.readouterr().err
