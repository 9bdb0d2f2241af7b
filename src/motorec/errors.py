"""User-facing errors: the CLI prints them as one paragraph and exits with code 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class MotorecError(Exception):
    """An error caused by the user's input (file, flag, request), not by a bug."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """A ' Did you mean X?' suffix naming the closest valid choice, or ''."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f" Did you mean '{close[0]}'?" if close else ""
