"""`motorec report`: the page's numbers are the run files', and every image loads in a real browser."""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest

from motorec.cli import main
from motorec.data import load_dataset
from motorec.reports.page import TABLE_METRICS, write_report
from motorec.tokenizers.codebook import collision_rate, perplexity, utilisation


class Cells(HTMLParser):
    """Collects data-value cells by (run, group) row, tables by id, images and token rows."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[tuple[str, str], list[float]] = {}
        self.cold: dict[str, list[float]] = {}
        self.slots: dict[tuple[str, str], list[float]] = {}
        self.joint: list[float] = []
        self.images: list[str] = []
        self._table = self._run = None
        self._row: list[float] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self._table, self._run = a.get("id") or a.get("class"), a.get("data-run")
        elif tag == "tr" and self._table == "metrics" and "data-run" in a:
            self._row = self.rows.setdefault((a["data-run"], a["data-group"]), [])
        elif tag == "tr" and self._table == "cold-share" and "data-run" in a:
            self._row = self.cold.setdefault(a["data-run"], [])
        elif tag == "tr" and self._table == "tokens" and "data-slot" in a:
            self._row = self.slots.setdefault((self._run, a["data-slot"]), [])
        elif tag in ("td", "span") and "data-value" in a:
            (self.joint if a.get("class") == "joint" else self._row).append(float(a["data-value"]))
        elif tag == "img":
            self.images.append(a["src"])


@pytest.fixture(scope="module")
def report(synthetic_runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    dirs = [synthetic_runs["motorec"].dir, synthetic_runs["lightgcn"].dir]
    data = write_report(dirs, out)
    parsed = Cells()
    parsed.feed((out / "report.html").read_text())
    return out, dirs, data, parsed


def test_metric_cells_are_the_results_files(report):
    _out, dirs, _, parsed = report
    for d in dirs:
        res = json.loads((d / "results.json").read_text())
        for group, values in res["test"].items():
            assert parsed.rows[(res["config"]["model_name"], group)] == [values[m] for m in TABLE_METRICS]


def test_cold_shares_are_recomputed_from_topk_and_split(report):
    _, dirs, _, parsed = report
    ds = load_dataset("synthetic-cold")
    cold = set(ds.cold_items.tolist())
    test_items = ds.items[ds.labels == 2]
    for d in dirs:
        rows = [line.split("\t") for line in (d / "topk_test.tsv").read_text().splitlines()]
        top20 = [int(i) in cold for r in rows for i in r[1:21]]
        expected = [float(np.mean(top20)), float(np.mean([int(i) in cold for i in test_items]))]
        assert parsed.cold[json.loads((d / "results.json").read_text())["config"]["model_name"]] == pytest.approx(
            expected
        )


def test_token_cells_match_the_models_codes(report, synthetic_runs):
    _, _, _, parsed = report
    codes, slots = synthetic_runs["motorec"].model.token_table()
    for col, s in enumerate(slots):
        cols = [c for c, t in enumerate(slots) if t.modality == s.modality]
        assert parsed.slots[("motorec", f"{s.modality}:{s.level}")] == pytest.approx(
            [
                utilisation(codes[:, col], s.codebook_size),
                perplexity(codes[:, col], s.codebook_size),
                collision_rate(codes[:, cols]),
            ]
        )
    assert parsed.joint == pytest.approx([collision_rate(codes)])
    assert not any(run == "lightgcn" for run, _ in parsed.slots)  # no tokens, no token section


def test_validation_history_and_images_are_written(report):
    out, dirs, data, parsed = report
    assert sorted(parsed.images) == sorted(data["images"])
    assert {"recall_at_k.png", "groups.png", "cold_share.png", "valid_curves.png", "tokens_0.png"} <= set(parsed.images)
    for name in parsed.images:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and (out / name).stat().st_size < 200_000
    history = json.loads((dirs[0] / "seed_2026" / "result.json").read_text())["history"]
    assert data["runs"][0]["history"]["2026"] == history
    assert [h["stage"] for h in history] == ["content"] * 3 + ["id"] * 3  # MoToRec: two stages of 3 epochs


def test_report_cli(synthetic_runs, tmp_path, capsys):
    assert main(["report", str(synthetic_runs["motor"].dir), "--out", str(tmp_path / "r")]) == 0
    assert (tmp_path / "r" / "report.html").is_file() and (tmp_path / "r" / "tokens_0.png").is_file()
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "r2")]) == 2
    assert "results.json" in capsys.readouterr().err


CHECK_IMAGES = """<script>
window.addEventListener("load", () => {
  const out = document.createElement("pre");
  out.id = "image-check";
  out.textContent = JSON.stringify([...document.images].map(i => [i.getAttribute("src"), i.complete, i.naturalWidth]));
  document.body.appendChild(out);
});
</script></body>"""


def _browser() -> str | None:
    return next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


def test_every_image_loads_in_a_headless_browser(report, tmp_path):
    browser = _browser()
    if browser is None:
        reason = "no Chromium on this machine (.ci/run installs the system package 'chromium' where it can)"
        print(f"SKIPPED: {reason}")
        pytest.skip(reason)
    out, _, data, _ = report
    page = tmp_path / "page"
    shutil.copytree(out, page)
    html = (page / "report.html").read_text()
    (page / "report.html").write_text(html.replace("</body>", CHECK_IMAGES))
    dom = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--allow-file-access-from-files",
            "--virtual-time-budget=10000",
            "--dump-dom",
            (page / "report.html").as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    start = dom.index('<pre id="image-check">') + len('<pre id="image-check">')
    loaded = json.loads(dom[start : dom.index("</pre>", start)].replace("&quot;", '"'))
    assert sorted(src for src, _, _ in loaded) == sorted(data["images"])
    assert all(complete and width > 100 for _, complete, width in loaded), loaded
