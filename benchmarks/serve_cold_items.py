"""Cold items through a running service, as a new user would: raw text + poster in, top-20 out.

    python benchmarks/serve_cold_items.py --url http://127.0.0.1:8000 --data ../shared/data/ml100k-mm \
        --split ml100k-mm-cold.inter

Serve a bundle exported with `--drop-cold-items` first. For every cold item of the split (or the
first --limit), POST /items/form with its raw fields (title, genres, overview) and poster from
`DATA/raw/`, then ask GET /recommend/{user}?k=20 for every user who rated it in *test* and count
how often it is there. Chance = 20 / (items the user can be recommended), averaged over the same
(user, item) pairs. Writes RESULTS.json and RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import httpx
import numpy as np

from motorec.data import load_dataset
from motorec.data.dataset import TEST
from motorec.features.presets import ml100k


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--url", default="http://127.0.0.1:8000")
    p.add_argument("--data", required=True)
    p.add_argument("--split", required=True)
    p.add_argument("--limit", type=int, default=0, help="only the first N cold items (0 = all)")
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "serve_cold_items"))
    args = p.parse_args(argv)
    ds = load_dataset(args.data, split=args.split)
    spec = ml100k(Path(args.data) / "raw")
    table = spec.table
    items = json.loads(httpx.get(f"{args.url}/health").text)["items_indexed"]
    cold = ds.cold_items[: args.limit or None]
    test = ds.labels == TEST
    user_ids = {u: str(u) for u in range(ds.n_users)}  # the bundle's user ids: u_id_mapping.csv when present
    mapping = Path(args.data) / "u_id_mapping.csv"
    if mapping.is_file():
        rows = [line.split("\t") for line in mapping.read_text().splitlines()[1:]]
        user_ids = {int(internal): raw for raw, internal in rows}
    client = httpx.Client(base_url=args.url, timeout=60)
    ingest_ms, hits, chance, pairs, examples = [], 0, [], 0, []
    for item in cold:
        row = table.iloc[int(item)]
        movie_id = str(row["movie_id"])
        fields = {"title": row["title"], "genres": row["genres"], "overview": row["overview"]}
        poster = spec.image_dir / spec.image_pattern.format(movie_id=movie_id)
        files = {"image": (poster.name, poster.read_bytes(), "image/jpeg")} if poster.is_file() else None
        t0 = time.perf_counter()
        r = client.post(
            "/items/form",
            data={"id": movie_id, "title": row["title"], "fields": json.dumps(fields, default=str)},
            files=files,
        )
        ingest_ms.append((time.perf_counter() - t0) * 1000)
        if r.status_code != 201:
            raise SystemExit(f"ingest of {movie_id} failed: {r.status_code} {r.text}")
        items += 1
        for u in ds.users[test & (ds.items == item)]:
            recs = client.get(f"/recommend/{user_ids[int(u)]}?k={args.k}").json()["items"]
            hit = movie_id in {x["id"] for x in recs}
            hits += hit
            pairs += 1
            n_candidates = items - len(ds.train_matrix[int(u)].indices)
            chance.append(args.k / n_candidates)
            if hit and len(examples) < 5:
                examples.append(
                    {
                        "item": movie_id,
                        "title": row["title"],
                        "user": user_ids[int(u)],
                        "rank": [x["id"] for x in recs].index(movie_id) + 1,
                    }
                )
    res = {
        "command": " ".join(["python", "benchmarks/serve_cold_items.py", *sys.argv[1:]]),
        "cold_items_posted": len(cold),
        "test_pairs": pairs,
        "hits_in_top_k": hits,
        "k": args.k,
        "hit_rate": hits / max(1, pairs),
        "chance_hit_rate": float(np.mean(chance)) if chance else None,
        "lift_over_chance": (hits / max(1, pairs)) / float(np.mean(chance)) if chance else None,
        "ingest_ms_p50": float(np.percentile(ingest_ms, 50)),
        "ingest_ms_p99": float(np.percentile(ingest_ms, 99)),
        "health_after": client.get("/health").json(),
        "examples": examples,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(res, indent=2))
    md = (
        f"# Cold items posted from raw text + poster\n\nCommand: `{res['command']}`\n\n"
        f"{res['cold_items_posted']} cold items posted; {pairs} (test user, item) pairs; the item was in the "
        f"user's top-{args.k} for **{hits}** pairs: hit rate **{res['hit_rate']:.4f}** vs chance "
        f"{res['chance_hit_rate']:.4f} (lift {res['lift_over_chance']:.1f}x). Ingest (text + image encoded by the "
        f"server) p50 {res['ingest_ms_p50']:.0f} ms, p99 {res['ingest_ms_p99']:.0f} ms.\n"
    )
    out.with_suffix(".md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
