"""Every figure in README and docs comes from a committed results file, and matches it.

A figure is a decimal number in prose or a table (code blocks and `inline code` are settings and
commands, not figures). Each one must stand under a `<!-- figures: FILE [FILE ...] -->` comment
(paths under benchmarks/results/; the comment holds until the next heading or the next such
comment) and equal, at the precision shown, a number stored in one of those files (a percentage
may also be the stored share times 100). Editing a figure by hand, or citing one without its file,
fails here.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")), ROOT / "CONTRIBUTING.md"]
SOURCE = re.compile(r"<!--\s*figures:\s*(.*?)\s*-->")
NUMBER = re.compile(r"(?<![\w.\-/])(-?\d+\.\d+)(%?)(?![\w.]*\d)")
FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"`[^`]*`")
LINK_TARGET = re.compile(r"\]\([^)]*\)")
COMMENT = re.compile(r"<!--.*?-->")


def numbers_in(value: object) -> list[float]:
    """Every number stored in a JSON value (numbers inside strings too, e.g. '0.2080 ± 0.0048')."""
    if isinstance(value, bool):
        return []
    if isinstance(value, (int, float)):
        return [float(value)] if math.isfinite(value) else []
    if isinstance(value, str):
        return [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?", value)]
    if isinstance(value, dict):
        return [n for v in value.values() for n in numbers_in(v)]
    if isinstance(value, list):
        return [n for v in value for n in numbers_in(v)]
    return []


def stored_numbers(files: list[str], doc: Path) -> list[float]:
    values: list[float] = []
    for name in files:
        path = (RESULTS / name).resolve()
        assert path.is_file(), f"{doc.name}: figures cite {name}, which is not under benchmarks/results/"
        if path.suffix == ".json":
            values += numbers_in(json.loads(path.read_text()))
        else:  # .csv / .md tables written by the same commands
            values += numbers_in(path.read_text())
    return values


def matches(shown: str, percent: bool, values: list[float]) -> bool:
    x = float(shown)
    decimals = len(shown.split(".")[1])
    tol = 0.5 * 10**-decimals + 1e-9
    candidates = values + ([v * 100 for v in values] if percent else [])
    return any(abs(abs(v) - abs(x)) <= tol for v in candidates)


def figures(doc: Path) -> list[tuple[int, str, bool, list[str]]]:
    """(line number, number, is percent, cited files) of every figure in a markdown file."""
    out: list[tuple[int, str, bool, list[str]]] = []
    files: list[str] = []
    in_code = False
    for lineno, line in enumerate(doc.read_text().splitlines(), 1):
        if FENCE.match(line):
            in_code = not in_code
            continue
        if in_code:
            continue
        if line.lstrip().startswith("#"):
            files = []
        cited = SOURCE.search(line)
        if cited:
            files = cited.group(1).split()
        text = COMMENT.sub("", LINK_TARGET.sub("]", INLINE_CODE.sub("", line)))
        for m in NUMBER.finditer(text):
            out.append((lineno, m.group(1), m.group(2) == "%", files))
    return out


@pytest.mark.parametrize("doc", [d for d in DOCS if d.is_file()], ids=lambda d: str(d.relative_to(ROOT)))
def test_every_figure_is_backed_by_its_results_file(doc):
    problems = []
    cache: dict[tuple[str, ...], list[float]] = {}
    for lineno, shown, percent, files in figures(doc):
        if not files:
            problems.append(
                f"{doc.name}:{lineno}: {shown}{'%' if percent else ''} has no <!-- figures: FILE --> source"
            )
            continue
        key = tuple(files)
        if key not in cache:
            cache[key] = stored_numbers(files, doc)
        if not matches(shown, percent, cache[key]):
            problems.append(f"{doc.name}:{lineno}: {shown}{'%' if percent else ''} is not in {', '.join(files)}")
    assert not problems, "\n".join(problems[:40]) + (f"\n... {len(problems) - 40} more" if len(problems) > 40 else "")


def test_the_check_catches_a_hand_edited_figure(tmp_path):
    """The mechanism itself: a figure that differs from its file, or has no file, is reported."""
    (RESULTS / "figures_selftest.json").write_text(json.dumps({"test": {"all": {"recall@20": 0.20801}}}))
    try:
        doc = tmp_path / "page.md"
        doc.write_text(
            "<!-- figures: figures_selftest.json -->\n| all | 0.2080 |\n| edited | 0.2090 |\n\n# next\nloose 0.5 here\n"
        )
        found = {(shown, bool(files)) for _, shown, _, files in figures(doc)}
        assert found == {("0.2080", True), ("0.2090", True), ("0.5", False)}
        values = stored_numbers(["figures_selftest.json"], doc)
        assert matches("0.2080", False, values) and matches("20.80", True, values)
        assert not matches("0.2090", False, values) and not matches("0.2080", False, [0.2090])
    finally:
        (RESULTS / "figures_selftest.json").unlink()
