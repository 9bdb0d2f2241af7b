"""docs/python-api.md runs as written: its ```python blocks are executed in order, in one namespace
(the ```python ml100k block needs ../shared/data and about 25 minutes, so it is not run here: it is
the README's example)."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "python-api.md"


def test_python_api_page_runs_top_to_bottom(tmp_path, monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) >= 5
    monkeypatch.chdir(tmp_path)  # the page writes runs/ and bundles/ relative to where it runs
    namespace: dict = {}
    for i, block in enumerate(blocks):
        exec(compile(block, f"{DOC.name} block {i + 1}", "exec"), namespace)
    out = capsys.readouterr().out
    assert "cold@cold Recall@20:" in out and "True" in out  # the reloaded run evaluates to its saved metrics
    assert (tmp_path / "bundles" / "api-motorec" / "manifest.json").is_file()
