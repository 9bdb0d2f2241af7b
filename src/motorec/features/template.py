"""Item text from a Python format string over the item's fields.

List-valued fields are joined with ", " and missing values (None/NaN) become "", so a template such
as "{title}. Genres: {genres}. {overview}" reproduces the published ml100k-mm texts exactly.
"""

from __future__ import annotations

import string
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from motorec.errors import MotorecError, did_you_mean


def template_fields(template: str) -> list[str]:
    """Field names the template reads, in order; plain names only, since every value is text."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise MotorecError(f"text template {template!r} is not a valid format string: {exc}") from exc
    names = []
    for _, field, _, _ in parsed:
        if field is None:
            continue
        if not field.isidentifier():
            raise MotorecError(f"text template {template!r}: '{{{field}}}' must be a plain field name like {{title}}.")
        if field not in names:
            names.append(field)
    return names


def field_text(value: Any) -> str:
    """One field as text: lists joined with ", ", missing values as ""."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return ", ".join(field_text(v) for v in value)
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return ""
    return str(value)


def render_texts(
    table: pd.DataFrame, template: str, ids: Sequence[Hashable], source: str = "the item table"
) -> tuple[list[str], dict[str, int]]:
    """One text per row and, per field, how many rows had it empty; a blank text is an error."""
    fields = template_fields(template)
    missing = [f for f in fields if f not in table.columns]
    if missing:
        raise MotorecError(
            f"text template field '{missing[0]}' is not a column of {source}"
            f"{did_you_mean(missing[0], map(str, table.columns))} Columns: {', '.join(map(str, table.columns))}."
        )
    columns = {f: [field_text(v) for v in table[f].tolist()] for f in fields}
    texts = []
    for i in range(len(table)):
        try:
            text = template.format(**{f: columns[f][i] for f in fields})
        except ValueError as exc:
            raise MotorecError(f"text template {template!r} cannot format item {ids[i]!r}: {exc}") from exc
        if not text.strip():
            raise MotorecError(
                f"{source}: item {ids[i]!r} (row {i}) has empty text: fields {', '.join(fields)} are all empty."
            )
        texts.append(text)
    empty = {f: sum(1 for v in columns[f] if not v.strip()) for f in fields}
    return texts, {f: n for f, n in empty.items() if n}
