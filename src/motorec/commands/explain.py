"""`motorec explain`: what a trained run's tokens mean, offline (the service's /tokens, from a run)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from motorec.errors import MotorecError

console = Console(soft_wrap=True)


def _words(meaning: dict[str, Any]) -> str:
    return ", ".join(w["word"] for w in meaning["top_words"]) or "–"


def _items(meaning: dict[str, Any]) -> str:
    shown = "; ".join(i["title"] or i["id"] for i in meaning["items"]) or "–"
    more = meaning["n_items"] - len(meaning["items"])
    return shown + (f"; … {more} more" if more > 0 else "")


def print_item(result: dict[str, Any]) -> None:
    console.print(
        f"[bold]{result['title'] or result['id']}[/bold] (id {result['id']}, "
        f"{result['train_interactions']} train interactions)"
    )
    for t in result["tokens"]:
        console.print(
            f"\n[bold]{t['modality']}:{t['level']}:{t['code']}[/bold]  shared with {t['n_items']} training items",
            highlight=False,
        )
        if t["kind"] == "code":
            console.print(f"  items: {_items(t)}", highlight=False)
            console.print(f"  words: {_words(t)}", highlight=False)


def explain(
    run_dir: Path = typer.Argument(..., help="A finished run of a token model (MoToRec, or --set item_repr=motor)."),
    item: str | None = typer.Option(
        None,
        help="Item id as the dataset names it (i_id_mapping.csv; e.g. 50 for "
        "MovieLens movie_id 50), else the internal item index.",
    ),
    token: str | None = typer.Option(None, help="A token MODALITY:LEVEL:CODE, e.g. text:0:17."),
    max_items: int = typer.Option(10, help="Training items listed per token."),
    words: int = typer.Option(8, help="Typical words listed per token."),
    seed: int | None = typer.Option(None, help="Which seed's checkpoint (default: the run's first)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
) -> None:
    """An item's tokens per modality and level, with the training items that share each token and
    the words most typical of them (TF-IDF against the catalogue); or one token's items and words."""
    from motorec.api import load_run

    if (item is None) == (token is None):
        raise MotorecError("explain: give exactly one of --item ID or --token MODALITY:LEVEL:CODE.")
    result = load_run(run_dir, seed=seed).explain(item=item, token=token, max_items=max_items, n_words=words)
    if as_json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    elif item is not None:
        print_item(result)
    else:
        console.print(f"[bold]{token}[/bold]  carried by {result['n_items']} training items", highlight=False)
        console.print(f"  items: {_items(result)}", highlight=False)
        console.print(f"  words: {_words(result)}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command()(explain)
