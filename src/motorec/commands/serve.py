"""`motorec export` (run -> serving bundle) and `motorec serve` (bundle -> HTTP service)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
import yaml
from rich.console import Console

from motorec.errors import MotorecError

console = Console(stderr=True)


def _params(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise MotorecError(f"--tokenizer-set '{pair}': expected key=value.")
        key, value = pair.split("=", 1)
        out[key.strip()] = yaml.safe_load(value)
    return out


def export(
    run_dir: Path = typer.Argument(..., help="A finished `motorec train` run directory."),
    out: Path = typer.Option(..., "--out", help="Bundle folder to write."),
    seed: Optional[int] = typer.Option(None, help="Which seed's checkpoint (default: the run's first)."),
    drop_cold_items: bool = typer.Option(False, help="Leave the split's cold items out of the served catalogue "
                                                     "(they can then be posted as new items)."),
    tokenizer: Optional[str] = typer.Option(None, help="Tokens for models that have none: a saved tokenizer folder, "
                                                       "or a registered tokenizer name fitted here on item content."),
    tokenizer_set: list[str] = typer.Option([], "--tokenizer-set", help="key=value parameter of the fitted tokenizer."),
    overwrite: bool = typer.Option(False, help="Replace an existing bundle folder."),
) -> None:
    """Write a serving bundle (safetensors + JSON, no pickle) from a trained run."""
    from motorec.api import load_run

    manifest = load_run(run_dir, seed=seed).export(out, drop_cold_items=drop_cold_items, tokenizer=tokenizer,
                                                   tokenizer_params=_params(tokenizer_set), overwrite=overwrite)
    summary = {k: manifest[k] for k in ("n_users", "n_items", "dim", "modalities")}
    summary["item_vectors"] = manifest["item_vectors"]["method"]
    summary["tokens"] = None if not manifest["tokens"] else len(manifest["tokens"]["slots"])
    summary["fold_in_relative_reg"] = manifest["fold_in"]["relative_reg"]
    console.print(f"wrote bundle {out}")
    print(json.dumps(summary))


def serve(
    bundle: Path = typer.Argument(..., help="A bundle folder written by `motorec export`."),
    host: str = typer.Option("127.0.0.1", help="Interface to bind (loopback by default)."),
    port: int = typer.Option(8000),
    wal: Optional[Path] = typer.Option(None, help="Write-ahead log file (default BUNDLE/state/wal.log)."),
    threads: int = typer.Option(1, help="torch CPU threads for content encoding."),
    preload: bool = typer.Option(True, help="Load the text/image encoders before accepting requests."),
    log_level: str = typer.Option("warning", help="uvicorn log level."),
    index: str = typer.Option("auto", help="Item index: auto (exact up to --index-exact-max items, IVF above), "
                                           "flat, ivf or hnsw."),
    index_exact_max: int = typer.Option(200_000, help="auto: largest catalogue searched exactly."),
    nprobe: int = typer.Option(0, help="IVF cells probed per search (0 = calibrated on user vectors to "
                                       "--index-recall@20 against exact search)."),
    index_recall: float = typer.Option(0.98, help="Recall@20 against exact search that the IVF calibration aims for."),
) -> None:
    """Serve recommendations over HTTP; new items and interactions are logged and replayed on start."""
    import torch
    import uvicorn

    from motorec.serving.app import create_app
    from motorec.serving.bundle import load_bundle
    from motorec.serving.index import IndexConfig
    from motorec.serving.service import RecommenderService

    torch.set_num_threads(threads)
    index_config = IndexConfig(kind=index, exact_max_items=index_exact_max, nprobe=nprobe, target_recall=index_recall)
    index_config.validate()
    service = RecommenderService(load_bundle(bundle), wal or bundle / "state" / "wal.log", preload, index_config)
    console.print(f"serving {bundle} on http://{host}:{port} ({service.health()['items_indexed']} items, "
                  f"{service.index.kind} index, "
                  f"{service.replayed} log records replayed, started in {service.startup_seconds:.1f}s)")
    try:
        uvicorn.run(create_app(service), host=host, port=port, log_level=log_level, access_log=False)
    finally:
        service.close()


def register(app: typer.Typer) -> None:
    app.command("export")(export)
    app.command("serve")(serve)
