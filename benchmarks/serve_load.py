"""Load and fault test of `motorec serve` on loopback, in one command.

    python benchmarks/serve_load.py --bundle BUNDLE [--duration 60 --rate 210 --ingest-share 0.1]

1. starts `motorec serve BUNDLE` on a free loopback port with a fresh write-ahead log;
2. open-loop mixed load (arrivals on a fixed schedule, so a slow server cannot slow the client
   down and hide its queueing): `ingest-share` POST /items (a fresh id each), the rest
   GET /recommend/{random user}?k=20, for `duration` seconds; per-endpoint throughput, p50/p99
   latency, errors, and ingest-to-recommendable latency (POST sent -> first recommend response
   sent after the acknowledgement whose index version includes the item);
3. fault phase: the same load, `kill -9` of the server mid-load, restart on the same log, then
   GET /items/{id} for every acknowledged ingest: lost = acknowledged but absent.
Writes RESULTS.json and RESULTS.md. The client is raw asyncio HTTP/1.1 keep-alive (an HTTP
library would cost more CPU than the server on a 2-core machine).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- HTTP client
class Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + (body or b""))
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("connection closed")
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return int(status_line.split()[1]), await self.reader.readexactly(length)


async def connect(port: int) -> Conn:
    return Conn(*await asyncio.open_connection("127.0.0.1", port))


# ----------------------------------------------------------------------------- server
def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (Linux /proc), to report CPU per request."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(bundle: Path, port: int, wal: Path, log: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "motorec.cli", "serve", str(bundle), "--port", str(port), "--wal", str(wal)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.Popen(cmd, stdout=open(log, "ab"), stderr=subprocess.STDOUT, env=env, cwd=REPO)


async def wait_healthy(port: int, proc: subprocess.Popen, timeout: float = 120.0) -> dict:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode} before becoming healthy")
        try:
            conn = await connect(port)
            status, body = await conn.request("GET", "/health")
            conn.writer.close()
            if status == 200:
                return json.loads(body)
        except OSError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("server did not become healthy in time")


# ----------------------------------------------------------------------------- workload
class Workload:
    """Request bodies: recommend for random known users, ingest of fresh items (features or text)."""

    def __init__(self, bundle: Path, mode: str, seed: int, tag: str) -> None:
        manifest = json.loads((bundle / "manifest.json").read_text())
        items = json.loads((bundle / "items.json").read_text())
        self.users = items["user_ids"]
        self.texts = [t for t in items["texts"] if t.strip()] or ["an item"]
        self.mode = mode
        self.rng = random.Random(seed)
        self.np_rng = np.random.default_rng(seed)
        self.tag = tag
        self.n = 0
        from safetensors.numpy import load_file

        arrays = load_file(str(bundle / "arrays.safetensors"))
        self.means = {m: arrays[f"feature_mean.{m}"] for m in manifest["modalities"]}

    def recommend_path(self) -> str:
        return f"/recommend/{self.rng.choice(self.users)}?k=20&exclude_seen=true"

    def ingest_body(self) -> tuple[str, bytes]:
        self.n += 1
        item_id = f"{self.tag}-{self.n}"
        if self.mode == "text":
            body = {"id": item_id, "text": self.rng.choice(self.texts) + f" (edition {self.n})"}
        else:
            feats = {
                m: (mu + 0.5 * np.abs(mu).mean() * self.np_rng.standard_normal(mu.shape)).round(5).tolist()
                for m, mu in self.means.items()
            }
            body = {"id": item_id, "features": feats}
        return item_id, json.dumps(body).encode()


async def run_load(
    port: int,
    work: Workload,
    duration: float,
    rate: float,
    share: float,
    n_conns: int,
    kill_at: float | None = None,
    proc: subprocess.Popen | None = None,
) -> list[dict]:
    """Open-loop load; returns one record per request (endpoint, send/done times, status)."""
    pool: asyncio.Queue[Conn | None] = asyncio.Queue()  # None: a slot whose connection died
    for _ in range(n_conns):
        pool.put_nowait(await connect(port))
    records: list[dict] = []
    tasks = []

    async def one(kind: str, scheduled: float) -> None:
        conn = await pool.get()
        rec = {"kind": kind, "scheduled": scheduled, "send": time.perf_counter()}
        try:
            conn = conn or await connect(port)
            if kind == "recommend":
                status, body = await conn.request("GET", work.recommend_path())
                if status == 200:
                    rec["version"] = json.loads(body)["index_version"]
            else:
                item_id, payload = work.ingest_body()
                rec["id"] = item_id
                status, body = await conn.request("POST", "/items", payload)
                if status == 201:
                    rec["version"] = json.loads(body)["index_version"]
            rec["status"] = status
            if status >= 400:
                rec["error"] = body[:300].decode(errors="replace")
        except (OSError, asyncio.IncompleteReadError, ConnectionError, ValueError) as exc:
            rec["status"] = 0
            rec["error"] = f"{type(exc).__name__}: {exc}"
            if conn is not None:
                conn.writer.close()
            conn = None
        rec["done"] = time.perf_counter()
        records.append(rec)
        pool.put_nowait(conn)

    rng = random.Random(7)
    start = time.perf_counter()
    n = 0
    killed = False
    while True:
        scheduled = start + n / rate
        if scheduled - start >= duration:
            break
        if kill_at is not None and not killed and scheduled - start >= kill_at:
            proc.send_signal(signal.SIGKILL)
            killed = True
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        kind = "ingest" if rng.random() < share else "recommend"
        tasks.append(asyncio.ensure_future(one(kind, scheduled)))
        n += 1
    if tasks:
        _, pending = await asyncio.wait(tasks, timeout=30)
        for task in pending:
            task.cancel()
    while not pool.empty():
        conn = pool.get_nowait()
        if conn is not None:
            conn.writer.close()
    return records


def uvicorn_impl() -> str:
    """What uvicorn picks with its 'auto' settings here (httptools/uvloop when installed)."""
    import importlib.util

    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    return f"{http}+{loop}"


# ----------------------------------------------------------------------------- analysis
def pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values else None


def summarize(records: list[dict], duration: float) -> dict:
    out: dict = {
        "duration_s": duration,
        "requests": len(records),
        "throughput_rps": round(len(records) / duration, 1),
        "errors": sum(1 for r in records if r["status"] == 0 or r["status"] >= 400),
    }
    for kind in ("recommend", "ingest"):
        rs = [r for r in records if r["kind"] == kind]
        ok = [r for r in rs if 200 <= r["status"] < 300]
        lat = [(r["done"] - r["send"]) * 1000 for r in ok]
        sched = [(r["done"] - r["scheduled"]) * 1000 for r in ok]
        out[kind] = {
            "requests": len(rs),
            "ok": len(ok),
            "errors": len(rs) - len(ok),
            "rps": round(len(rs) / duration, 1),
            "p50_ms": pct(lat, 50),
            "p99_ms": pct(lat, 99),
            "max_ms": pct(lat, 100),
            "p99_from_schedule_ms": pct(sched, 99),
        }
    recs = sorted((r for r in records if r["kind"] == "recommend" and "version" in r), key=lambda r: r["send"])
    sends = np.array([r["send"] for r in recs])
    e2e = []
    for r in records:
        if r["kind"] == "ingest" and "version" in r:
            j = int(np.searchsorted(sends, r["done"]))
            while j < len(recs) and recs[j]["version"] < r["version"]:
                j += 1
            if j < len(recs):
                e2e.append((recs[j]["done"] - r["send"]) * 1000)
    out["ingest_to_recommendable"] = {"measured": len(e2e), "p50_ms": pct(e2e, 50), "p99_ms": pct(e2e, 99)}
    errors = [r["error"] for r in records if "error" in r]
    out["first_errors"] = errors[:5]
    return out


async def server_histograms(port: int) -> dict[str, dict[str, int]]:
    """Cumulative latency bucket counts per route from the server's own /metrics."""
    conn = await connect(port)
    _, body = await conn.request("GET", "/metrics")
    conn.writer.close()
    out: dict[str, dict[str, int]] = {}
    for line in body.decode().splitlines():
        if line.startswith("motorec_request_latency_ms_bucket"):
            labels, value = line.rsplit(" ", 1)
            route = labels.split('route="')[1].split('"')[0]
            le = labels.split('le="')[1].split('"')[0]
            out.setdefault(route, {})[le] = int(value)
    return out


def server_side(before: dict, after: dict) -> dict:
    """p50/p99 upper bounds (histogram bucket edges, ms) measured inside the server for one phase."""
    out = {}
    for route, buckets in after.items():
        counts = {le: n - before.get(route, {}).get(le, 0) for le, n in buckets.items()}
        total = counts.get("+Inf", 0)
        if not total:
            continue
        edges = [le for le in buckets if le != "+Inf"] + ["+Inf"]
        q = {}
        for name, share in (("p50_ms_at_most", 0.5), ("p99_ms_at_most", 0.99)):
            q[name] = next(le for le in edges if counts[le] >= share * total)
        out[route] = {"requests": total, **q}
    return out


async def check_items(port: int, ids: list[str]) -> list[str]:
    conn = await connect(port)
    lost = []
    for item_id in ids:
        status, _ = await conn.request("GET", f"/items/{item_id}")
        if status != 200:
            lost.append(item_id)
    conn.writer.close()
    return lost


async def main_async(args: argparse.Namespace) -> dict:
    bundle = Path(args.bundle).resolve()
    workdir = Path(tempfile.mkdtemp(prefix="serve_load_"))
    wal, log = workdir / "wal.log", workdir / "server.log"
    port = args.port or free_port()
    tag = f"load{int(time.time())}"
    work = Workload(bundle, args.ingest_mode, args.seed, tag)
    t0 = time.perf_counter()
    proc = start_server(bundle, port, wal, log)
    health = await wait_healthy(port, proc)
    startup = time.perf_counter() - t0
    warm = await run_load(port, work, args.warmup, args.rate, args.ingest_share, args.connections)  # not measured
    cpu0, client0 = cpu_seconds(proc.pid), time.process_time()
    hist0 = await server_histograms(port)
    records = await run_load(port, work, args.duration, args.rate, args.ingest_share, args.connections)
    result = {"load": summarize(records, args.duration)}
    result["load"]["server_side"] = server_side(hist0, await server_histograms(port))
    result["load"]["server_cpu_ms_per_request"] = round((cpu_seconds(proc.pid) - cpu0) * 1000 / max(1, len(records)), 3)
    result["load"]["client_cpu_ms_per_request"] = round(
        (time.process_time() - client0) * 1000 / max(1, len(records)), 3
    )
    acked = [r["id"] for r in warm + records if r["kind"] == "ingest" and r["status"] == 201]
    fault: dict = {}
    if args.fault_duration > 0:
        frec = await run_load(
            port,
            work,
            args.fault_duration,
            args.rate,
            args.ingest_share,
            args.connections,
            kill_at=args.fault_duration / 2,
            proc=proc,
        )
        proc.wait()
        acked += [r["id"] for r in frec if r["kind"] == "ingest" and r["status"] == 201]
        t1 = time.perf_counter()
        proc = start_server(bundle, port, wal, log)
        after = await wait_healthy(port, proc)
        restart = time.perf_counter() - t1
        lost = await check_items(port, acked)
        fault = {
            "killed_at_s": args.fault_duration / 2,
            "requests_during_fault_phase": len(frec),
            "failed_during_fault_phase": sum(1 for r in frec if r["status"] == 0 or r["status"] >= 400),
            "acknowledged_ingests_total": len(acked),
            "replayed_records": after["replayed_on_start"],
            "restart_to_healthy_s": round(restart, 2),
            "lost_acknowledged_items": len(lost),
            "lost_examples": lost[:5],
        }
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    result.update(
        {
            "fault": fault,
            "config": {
                "bundle": str(bundle),
                "duration_s": args.duration,
                "target_rate_rps": args.rate,
                "ingest_share": args.ingest_share,
                "ingest_mode": args.ingest_mode,
                "connections": args.connections,
                "warmup_s": args.warmup,
                "fault_duration_s": args.fault_duration,
            },
            "server": {
                "startup_to_healthy_s": round(startup, 2),
                "items": health["items_indexed"],
                "users": health["users"],
                "model": health["model"],
                "item_vectors": health["item_vectors"],
            },
            "machine": {
                "cpus": os.cpu_count(),
                "uvicorn_http_loop": uvicorn_impl(),
                "nice": args.nice,
                "load_average_at_end": os.getloadavg(),
                "platform": platform.platform(),
                "python": platform.python_version(),
            },
            "command": " ".join(["python", "benchmarks/serve_load.py", *sys.argv[1:]]),
        }
    )
    return result


def markdown(res: dict) -> str:
    ld, cfg, f = res["load"], res["config"], res["fault"]
    lines = [
        f"# serve_load: {res['server']['model']} bundle, {cfg['duration_s']} s at {cfg['target_rate_rps']} req/s target",
        "",
        f"Command: `{res['command']}`",
        "",
        f"Machine: {res['machine']['cpus']} CPUs, uvicorn {res['machine']['uvicorn_http_loop']}, "
        f"client and server niceness {res['machine']['nice']}, load average at end {tuple(round(x, 2) for x in res['machine']['load_average_at_end'])}; "
        f"ingest mode: {cfg['ingest_mode']} ({'precomputed feature vectors' if cfg['ingest_mode'] == 'features' else 'raw text, encoded by the server'}).",
        "",
        f"Sustained throughput: **{ld['throughput_rps']} req/s**, errors: **{ld['errors']}**; CPU per request: "
        f"server {ld['server_cpu_ms_per_request']} ms, load client {ld['client_cpu_ms_per_request']} ms.",
        "",
        "| endpoint | requests | errors | req/s | p50 ms | p99 ms | max ms | p99 from schedule ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for kind in ("recommend", "ingest"):
        k = ld[kind]
        lines.append(
            f"| {kind} | {k['requests']} | {k['errors']} | {k['rps']} | {k['p50_ms']} | {k['p99_ms']} | "
            f"{k['max_ms']} | {k['p99_from_schedule_ms']} |"
        )
    lines += [
        "",
        "Inside the server (request received -> response sent, from its /metrics histogram; bucket upper bounds):",
        "",
    ]
    for route, v in ld["server_side"].items():
        if route != "/metrics":
            lines.append(
                f"- `{route}`: {v['requests']} requests, p50 <= {v['p50_ms_at_most']} ms, p99 <= {v['p99_ms_at_most']} ms"
            )
    e2e = ld["ingest_to_recommendable"]
    lines += [
        "",
        f"Ingest-to-recommendable (POST sent -> first recommendation served from an index containing the item): "
        f"p50 {e2e['p50_ms']} ms, p99 {e2e['p99_ms']} ms over {e2e['measured']} items.",
        "",
    ]
    if f:
        lines += [
            f"Fault: `kill -9` at {f['killed_at_s']} s into a {cfg['fault_duration_s']} s phase "
            f"({f['failed_during_fault_phase']} of {f['requests_during_fault_phase']} requests failed while it was down), "
            f"restart to healthy {f['restart_to_healthy_s']} s, {f['replayed_records']} log records replayed: "
            f"**{f['lost_acknowledged_items']} of {f['acknowledged_ingests_total']} acknowledged items lost**.",
            "",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bundle", required=True)
    p.add_argument("--duration", type=float, default=60.0)
    p.add_argument("--rate", type=float, default=210.0, help="target requests per second (open loop)")
    p.add_argument("--ingest-share", type=float, default=0.1)
    p.add_argument("--ingest-mode", choices=("features", "text"), default="features")
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--fault-duration", type=float, default=10.0, help="0 skips the kill -9 phase")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--nice",
        type=int,
        default=0,
        help="scheduling priority of client and server (negative = ahead of other work; needs root). "
        "On a machine shared with training jobs this measures the service rather than the queue.",
    )
    p.add_argument(
        "--out",
        default=str(REPO / "benchmarks" / "results" / "serve_load"),
        help="results path prefix (.json and .md are appended)",
    )
    args = p.parse_args(argv)
    if args.nice:
        os.setpriority(os.PRIO_PROCESS, 0, args.nice)  # the server inherits it
    res = asyncio.run(main_async(args))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(res, indent=2))
    out.with_suffix(".md").write_text(markdown(res))
    print(markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
