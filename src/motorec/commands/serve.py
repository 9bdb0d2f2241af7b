"""`motorec export` (run -> serving bundle) and `motorec serve` (bundle -> HTTP service)."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import typer
import yaml
from rich.console import Console

from motorec.errors import MotorecError
from motorec.serving.guard import API_KEY_ENV, API_KEY_HEADER
from motorec.serving.wal import DEFAULT_COMPACT_BYTES

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
    seed: int | None = typer.Option(None, help="Which seed's checkpoint (default: the run's first)."),
    drop_cold_items: bool = typer.Option(
        False, help="Leave the split's cold items out of the served catalogue (they can then be posted as new items)."
    ),
    tokenizer: str | None = typer.Option(
        None,
        help="Tokens for models that have none: a saved tokenizer folder, "
        "or a registered tokenizer name fitted here on item content.",
    ),
    tokenizer_set: list[str] = typer.Option([], "--tokenizer-set", help="key=value parameter of the fitted tokenizer."),
    overwrite: bool = typer.Option(False, help="Replace an existing bundle folder."),
) -> None:
    """Write a serving bundle (safetensors + JSON, no pickle) from a trained run."""
    from motorec.api import load_run

    manifest = load_run(run_dir, seed=seed).export(
        out,
        drop_cold_items=drop_cold_items,
        tokenizer=tokenizer,
        tokenizer_params=_params(tokenizer_set),
        overwrite=overwrite,
    )
    summary = {k: manifest[k] for k in ("n_users", "n_items", "dim", "modalities")}
    summary["item_vectors"] = manifest["item_vectors"]["method"]
    summary["tokens"] = None if not manifest["tokens"] else len(manifest["tokens"]["slots"])
    summary["fold_in_relative_reg"] = manifest["fold_in"]["relative_reg"]
    console.print(f"wrote bundle {out}")
    print(json.dumps(summary))


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve(
    bundle: Path = typer.Argument(..., help="A bundle folder written by `motorec export`."),
    host: str = typer.Option("127.0.0.1", help="Interface to bind (loopback by default)."),
    port: int = typer.Option(8000, min=0, max=65535),
    wal: Path | None = typer.Option(None, help="Write-ahead log file (default BUNDLE/state/wal.log)."),
    repair_wal: bool = typer.Option(
        False, help="Move a damaged end of the write-ahead log to a side file, keep the records before it, and start."
    ),
    wal_compact_bytes: int = typer.Option(
        DEFAULT_COMPACT_BYTES,
        min=0,
        help="Compact the log once it has grown by "
        "this many bytes (and at least doubled) since the last compaction; 0: never.",
    ),
    wal_compact_records: int = typer.Option(
        0, min=0, help="Also compact after this many new records (and at least doubled); 0: no record trigger."
    ),
    api_key: str | None = typer.Option(
        None,
        envvar=API_KEY_ENV,
        show_envvar=True,
        help=f"Require this key in the {API_KEY_HEADER} header of every write "
        f"request (prefer the environment variable: a flag shows in `ps`).",
    ),
    threads: int = typer.Option(1, min=1, help="torch CPU threads for content encoding."),
    preload: bool = typer.Option(True, help="Load the text/image encoders before accepting requests."),
    log_level: str = typer.Option("warning", help="uvicorn log level."),
    index: str = typer.Option(
        "auto", help="Item index: auto (exact up to --index-exact-max items, IVF above), flat, ivf or hnsw."
    ),
    index_exact_max: int = typer.Option(200_000, help="auto: largest catalogue searched exactly."),
    nprobe: int = typer.Option(
        0,
        help="IVF cells probed per search (0 = calibrated on user vectors to --index-recall@20 against exact search).",
    ),
    index_recall: float = typer.Option(0.98, help="Recall@20 against exact search that the IVF calibration aims for."),
) -> None:
    """Serve recommendations over HTTP; new items and interactions are logged and replayed on start."""
    import torch
    import uvicorn

    from motorec.serving.app import create_app
    from motorec.serving.bundle import STATE_DIR, load_bundle
    from motorec.serving.index import IndexConfig
    from motorec.serving.service import RecommenderService

    if api_key is not None and len(api_key) < 16:
        raise MotorecError(f"--api-key / {API_KEY_ENV}: use at least 16 characters (a random token).")
    if not is_loopback(host):
        console.print(
            f"[bold yellow]warning:[/bold yellow] binding {host}: the service is reachable from other "
            f"machines"
            + ("." if api_key else ", and without --api-key anyone who reaches it can add items and interactions.")
            + " Put it behind a proxy with TLS and rate limits."
        )
    torch.set_num_threads(threads)
    index_config = IndexConfig(kind=index, exact_max_items=index_exact_max, nprobe=nprobe, target_recall=index_recall)
    index_config.validate()
    service = RecommenderService(
        load_bundle(bundle),
        wal or bundle / STATE_DIR / "wal.log",
        preload,
        repair_wal=repair_wal,
        compact_bytes=wal_compact_bytes,
        compact_records=wal_compact_records,
        index_config=index_config,
    )
    recovery = service.wal.recovery.summary()
    if recovery:
        console.print(f"write-ahead log {service.wal.path}: {recovery}")
    elif repair_wal:
        console.print(f"write-ahead log {service.wal.path}: intact, nothing to repair")
    console.print(
        f"serving {bundle} on http://{host}:{port} ({service.health()['items_indexed']} items, "
        f"{service.index.kind} index, {service.replayed} log records replayed, started in "
        f"{service.startup_seconds:.1f}s{', write requests need the API key' if api_key else ''})"
    )
    try:
        uvicorn.run(create_app(service, api_key=api_key), host=host, port=port, log_level=log_level, access_log=False)
    finally:
        service.close()


def register(app: typer.Typer) -> None:
    app.command("export")(export)
    app.command("serve")(serve)
