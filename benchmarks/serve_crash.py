"""Crash test of the service's write-ahead log: SIGKILL `motorec serve` at random moments of mixed
ingest + interactions + log compaction, restart it on the same log, and check that every write it
acknowledged is still there.

    python benchmarks/serve_crash.py --bundle BUNDLE --cycles 200 --out benchmarks/results/serve_crash

Each cycle (re)starts the service (`motorec serve` run in a process forked from a parent that has
already imported motorec, so a restart costs the service's own start-up, not Python's imports) on
a fresh 127.0.0.1 port with a small compaction threshold, then:
1. checks every write acknowledged so far, in every earlier cycle: each acknowledged item and
   each acknowledged (user, item) interaction is in the log the restarted service replayed (read
   here, read-only) and is served by it (GET /items/{id} for the items acknowledged in the cycle
   just killed and a sample of older ones, GET /users/{id} for every user); the service's item
   count equals the log's; a torn tail left by the kill is reported in /health;
2. drives writer threads (new items with precomputed features, interactions of a pool of new
   and trained users referencing base and new items, explicit POST /admin/compact) plus the
   automatic compaction, and SIGKILLs the server at a random moment; in half of the cycles the
   kill comes 0-10 ms after a compaction was requested, and a kill that finds the compaction's
   temporary file on disk is counted as a kill during compaction.
A final restart checks every acknowledged item with GET /items/{id}. Writes OUT.json and OUT.md;
exits 1 if anything acknowledged was lost or the service did not restart.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_child(bundle: str, wal: str, port: int, compact_bytes: int, log: str) -> None:
    """The service, as `motorec serve` runs it (stdout/stderr to `log`)."""
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    from motorec.cli import main

    sys.exit(
        main(
            [
                "serve",
                bundle,
                "--port",
                str(port),
                "--wal",
                wal,
                "--no-preload",
                "--log-level",
                "error",
                "--wal-compact-bytes",
                str(compact_bytes),
            ]
        )
    )


class Client:
    """One keep-alive HTTP/1.1 connection to the server on loopback."""

    def __init__(self, port: int, timeout: float = 5.0) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        data = None if body is None else json.dumps(body).encode()
        self.conn.request(method, path, body=data, headers={"content-type": "application/json"} if data else {})
        resp = self.conn.getresponse()
        raw = resp.read()
        return resp.status, json.loads(raw) if raw else {}

    def close(self) -> None:
        self.conn.close()


def wait_ready(port: int, proc: mp.process.BaseProcess, timeout: float = 60.0) -> dict:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if not proc.is_alive():
            raise RuntimeError(f"the service exited with code {proc.exitcode} while starting")
        try:
            client = Client(port, timeout=2.0)
            status, health = client.call("GET", "/health")
            client.close()
            if status == 200:
                return health
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("the service did not become healthy")


class Ledger:
    """Everything the service acknowledged (thread-safe)."""

    def __init__(self, base_items: list[str], base_users: list[str]) -> None:
        self.lock = threading.Lock()
        self.items: list[str] = []
        self.item_cycle: dict[str, int] = {}
        self.interactions: dict[str, set[str]] = {}
        self.base_items, self.base_users = base_items, base_users
        self.compactions_acked = 0

    def known_items(self, rng: random.Random, k: int) -> list[str]:
        with self.lock:
            pool = self.items[-200:]
        return [rng.choice(pool) if pool and rng.random() < 0.5 else rng.choice(self.base_items) for _ in range(k)]


def writer(
    port: int,
    cycle: int,
    tid: int,
    ledger: Ledger,
    dims: dict[str, int],
    stop: threading.Event,
    item_share: float,
    seed: int,
) -> None:
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    users = [f"crash-user-{i}" for i in range(12)] + ledger.base_users[:8]
    try:
        client = Client(port)
        n = 0
        while not stop.is_set():
            n += 1
            if rng.random() < item_share:
                item_id = f"c{cycle}-t{tid}-{n}"
                body = {"id": item_id, "features": {m: nrng.normal(size=d).round(4).tolist() for m, d in dims.items()}}
                status, _ = client.call("POST", "/items", body)
                if status == 201:
                    with ledger.lock:
                        ledger.items.append(item_id)
                        ledger.item_cycle[item_id] = cycle
                elif status >= 500:
                    raise RuntimeError(f"POST /items -> {status}")
            else:
                user = rng.choice(users)
                items = ledger.known_items(rng, rng.randint(1, 3))
                status, _ = client.call("POST", f"/users/{user}/interactions", {"items": items})
                if status == 200:
                    with ledger.lock:
                        ledger.interactions.setdefault(user, set()).update(items)
                elif status >= 500:
                    raise RuntimeError(f"POST interactions -> {status}")
    except (OSError, http.client.HTTPException, ValueError):
        pass  # the server was killed


def compactor(port: int, ledger: Ledger, stop: threading.Event, seed: int) -> None:
    rng = random.Random(seed)
    try:
        client = Client(port)
        while not stop.wait(rng.uniform(0.05, 0.2)):
            status, _ = client.call("POST", "/admin/compact")
            if status == 200:
                with ledger.lock:
                    ledger.compactions_acked += 1
    except (OSError, http.client.HTTPException, ValueError):
        pass


def request_compaction_without_waiting(port: int) -> None:
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=1.0)
        s.sendall(b"POST /admin/compact HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n")
        threading.Timer(1.0, s.close).start()
    except OSError:
        pass


def logged_state(wal: Path) -> tuple[list[str], dict[str, set[str]], int]:
    """(item ids, user -> items, bytes of unterminated tail) of the log, read-only."""
    from motorec.serving.wal import scan

    data = wal.read_bytes()
    records, end, bad = scan(data)
    if bad is not None:
        raise RuntimeError(f"the log has a damaged complete record at byte {bad[0]} ({bad[1]})")
    items, users = [], {}
    for r in records[1:]:
        if r["op"] == "item":
            items.append(r["id"])
        elif r["op"] == "interactions":
            users.setdefault(r["user"], set()).update(r["items"])
    return items, users, len(data) - end


def verify(
    port: int, wal: Path, ledger: Ledger, health: dict, last_cycle: int, rng: random.Random, expected_torn: int
) -> dict:
    items, users, tail = logged_state(wal)
    logged = set(items)
    with ledger.lock:
        acked = list(ledger.items)
        inter = {u: set(v) for u, v in ledger.interactions.items()}
    lost_items = [i for i in acked if i not in logged]
    lost_pairs = [(u, i) for u, its in inter.items() for i in its if i not in users.get(u, set())]
    client = Client(port)
    recent = [i for i in acked if ledger.item_cycle[i] == last_cycle]
    older = [i for i in acked if ledger.item_cycle[i] != last_cycle]
    checked = recent + rng.sample(older, min(30, len(older)))
    served_missing = [i for i in checked if client.call("GET", f"/items/{i}")[0] != 200]
    user_missing = []
    for u, its in inter.items():
        status, body = client.call("GET", f"/users/{u}")
        online = set(body.get("online_items", [])) if status == 200 else set()
        user_missing += [(u, i) for i in its if i not in online]
    client.close()
    reported_torn = health["wal"]["torn_tail_dropped_bytes"]
    return {
        "lost_items": lost_items[:5],
        "n_lost_items": len(lost_items),
        "lost_interactions": lost_pairs[:5],
        "n_lost_interactions": len(lost_pairs),
        "items_not_served": served_missing[:5],
        "n_items_not_served": len(served_missing),
        "interactions_not_served": user_missing[:5],
        "n_interactions_not_served": len(user_missing),
        "service_items_equal_log": health["items_new"] == len(items),
        "torn_tail_expected": expected_torn,
        "torn_tail_reported": reported_torn,
        "torn_tail_report_ok": reported_torn == expected_torn,
        "tail_after_restart": tail,
        "items_checked_over_http": len(checked),
    }


def run(args: argparse.Namespace) -> dict:
    from motorec.serving.bundle import load_bundle

    bundle = load_bundle(args.bundle)
    dims = bundle.modalities
    base_items = [bundle.catalog.item_ids[i] for i in np.flatnonzero(bundle.served)[:300]]
    ledger = Ledger(base_items, list(bundle.catalog.user_ids[:50]))
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["motorec.cli", "motorec.serving.app", "motorec.serving.service", "uvicorn"])
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    wal = work / "wal.log"
    for stale in work.glob("wal.log*"):
        stale.unlink()
    server_log = work / "server.log"
    rng = random.Random(args.seed)
    cycles, failures = [], []
    proc, port = None, None
    expected_torn = 0
    kills_during_compaction = 0
    generations: set[str] = set()  # a compaction starts a new log generation
    t_start = time.time()
    try:
        for cycle in range(args.cycles + 1):
            port = free_port()
            t0 = time.time()
            proc = ctx.Process(
                target=serve_child, args=(str(args.bundle), str(wal), port, args.compact_bytes, str(server_log))
            )
            proc.start()
            try:
                health = wait_ready(port, proc)
            except RuntimeError as exc:
                failures.append({"cycle": cycle, "error": str(exc)})
                break
            restart_s = time.time() - t0
            check = verify(port, wal, ledger, health, cycle - 1, rng, expected_torn)
            row = {
                "cycle": cycle,
                "restart_seconds": round(restart_s, 3),
                "replayed": health["replayed_on_start"],
                "acknowledged_items": len(ledger.items),
                **check,
            }
            if cycle == args.cycles:  # final: every acknowledged item over HTTP
                client = Client(port)
                row["final_items_not_served"] = sum(client.call("GET", f"/items/{i}")[0] != 200 for i in ledger.items)
                client.close()
                proc.kill()
                proc.join()
                cycles.append(row)
                break
            stop = threading.Event()
            threads = [
                threading.Thread(
                    target=writer,
                    args=(port, cycle, t, ledger, dims, stop, args.item_share, rng.randrange(2**31)),
                    daemon=True,
                )
                for t in range(args.writers)
            ]
            threads.append(
                threading.Thread(target=compactor, args=(port, ledger, stop, rng.randrange(2**31)), daemon=True)
            )
            for t in threads:
                t.start()
            time.sleep(rng.uniform(args.min_run, args.max_run))
            near_compaction = rng.random() < 0.5
            if near_compaction:
                request_compaction_without_waiting(port)
                time.sleep(rng.uniform(0, 0.01))
            os.kill(proc.pid, signal.SIGKILL)
            proc.join()
            stop.set()
            for t in threads:
                t.join(timeout=10)
            during = (work / "wal.log.compact.tmp").exists()
            kills_during_compaction += during
            data = wal.read_bytes()
            expected_torn = len(data) - (data.rfind(b"\n") + 1)
            generations.add(json.loads(data[9 : data.find(b"\n")])["generation"])
            row.update(
                {
                    "kill_after_compaction_request": near_compaction,
                    "killed_during_compaction": during,
                    "torn_tail_left_by_kill": expected_torn,
                    "log_bytes_at_kill": len(data),
                }
            )
            cycles.append(row)
    finally:  # never leave a server behind (an exception, Ctrl-C)
        if proc is not None and proc.is_alive():
            proc.kill()
            proc.join()
    lost = sum(
        c["n_lost_items"]
        + c["n_lost_interactions"]
        + c["n_items_not_served"]
        + c["n_interactions_not_served"]
        + c.get("final_items_not_served", 0)
        for c in cycles
    )
    torn_bad = sum(not c["torn_tail_report_ok"] for c in cycles)
    restart = [c["restart_seconds"] for c in cycles]
    with ledger.lock:
        n_pairs = sum(len(v) for v in ledger.interactions.values())
    return {
        "benchmark": "serve_crash",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "bundle": {
            "path": str(args.bundle),
            "model": bundle.manifest["model"]["name"],
            "dataset": bundle.manifest["dataset"]["name"],
            "modalities": dims,
        },
        "summary": {
            "kills": len([c for c in cycles if "killed_during_compaction" in c]),
            "restarts_checked": len(cycles),
            "failed_restarts": len(failures),
            "kills_during_compaction": kills_during_compaction,
            "kills_right_after_compaction_request": sum(c.get("kill_after_compaction_request", False) for c in cycles),
            "acknowledged_items": len(ledger.items),
            "acknowledged_interaction_pairs": n_pairs,
            "explicit_compactions_acknowledged": ledger.compactions_acked,
            "log_generations_seen_at_kills": len(generations),
            "lost_acknowledged_writes": lost,
            "torn_tails_left_by_kills": sum(c.get("torn_tail_left_by_kill", 0) > 0 for c in cycles),
            "torn_tail_reports_wrong": torn_bad,
            "restart_seconds_p50": float(np.median(restart)) if restart else None,
            "restart_seconds_max": max(restart) if restart else None,
            "wall_seconds": round(time.time() - t_start, 1),
        },
        "failures": failures,
        "cycles": cycles,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "device": "cpu",
            "commit": _commit(),
        },
    }


def _commit() -> str | None:
    try:
        return (
            subprocess.run(
                ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10
            ).stdout.strip()
            or None
        )
    except OSError:
        return None


def markdown(res: dict) -> str:
    s = res["summary"]
    return "\n".join(
        [
            "# serve crash test",
            "",
            f"Command: `{res['command']}`",
            "",
            f"{s['kills']} SIGKILLs of `motorec serve` during mixed ingest + interactions + compaction "
            f"({s['kills_during_compaction']} while a compaction's temporary file was on disk, "
            f"{s['kills_right_after_compaction_request']} within 10 ms of a compaction request), "
            f"{s['restarts_checked']} restarts checked, {s['failed_restarts']} failed.",
            "",
            f"Acknowledged: {s['acknowledged_items']} items, {s['acknowledged_interaction_pairs']} (user, item) "
            f"interactions, {s['explicit_compactions_acknowledged']} explicit compactions.",
            "",
            f"**Acknowledged writes lost: {s['lost_acknowledged_writes']}**; torn tails left by kills: "
            f"{s['torn_tails_left_by_kills']}, wrongly reported on restart: {s['torn_tail_reports_wrong']}.",
            "",
            f"Restart to healthy: p50 {s['restart_seconds_p50']:.2f} s, max {s['restart_seconds_max']:.2f} s; "
            f"wall {s['wall_seconds']} s.",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bundle", type=Path, required=True)
    p.add_argument("--cycles", type=int, default=20, help="SIGKILL + restart cycles")
    p.add_argument("--writers", type=int, default=3, help="writer threads")
    p.add_argument("--item-share", type=float, default=0.2, help="share of writes that are new items")
    p.add_argument("--min-run", type=float, default=0.2, help="seconds of load before the kill, at least")
    p.add_argument("--max-run", type=float, default=0.8, help="... and at most")
    p.add_argument("--compact-bytes", type=int, default=16384, help="the service's --wal-compact-bytes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", type=Path, default=None, help="where the log lives (default: a temporary folder)")
    p.add_argument("--out", type=Path, required=True, help="writes OUT.json and OUT.md")
    args = p.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the cleanup in `run` on a plain kill too
    own_workdir = args.workdir is None
    if own_workdir:
        args.workdir = Path(tempfile.mkdtemp(prefix="motorec-crash-"))
    res = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(res, indent=2))
    args.out.with_suffix(".md").write_text(markdown(res))
    print(markdown(res))
    ok = (
        res["summary"]["lost_acknowledged_writes"] == 0
        and not res["failures"]
        and res["summary"]["torn_tail_reports_wrong"] == 0
    )
    if ok and own_workdir:
        shutil.rmtree(args.workdir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
