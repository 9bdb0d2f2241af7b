"""Would cold items placed on the warm score's scale by a content -> ID generator keep warm recall? Re-score runs.

    python benchmarks/motorec_cold_generator.py RUN_DIR [RUN_DIR ...] --table TABLE.json --out OUT.json

MoToRec places a cold item among warm ones by one per-user shift of its standardised content score
(`merge_scores`, the `cold_prior`); a specialist such as DeepMusic instead generates the item's
collaborative vector from its content and scores it like a warm item. Every seed's best-valid
checkpoint is scored again under two placements, each over a grid of cold offsets:
  shift       the packaged merge: warm items by s_w standardised over warm items, cold items by s_c
              standardised over all items + offset (the `cold_prior`)
  generator   every item by s_c(u, i) + u_id . v_i standardised over warm items, with v_i the item's
              ID vector when warm and g(content_i) when cold (+ offset for cold items); g is a
              two-layer ReLU MLP fitted after training by MSE to the warm items' ID vectors
              (DeepMusic's objective), early-stopped on a tenth of the warm items held out
For each placement two offsets are chosen on valid, per dataset: the best mean valid `all`, and the
best mean valid `all` among offsets that keep valid `warm` at >= 85% of the same model's warm recall
when only items with train interactions are ranked, as LightGCN does (`warm_retention`). At each,
test Recall@20 per seed and the paired difference of `all` against the best other row of the
benchmark table (`--table`) are written.
Full users x items score matrices: for the benchmark's datasets, not for large catalogues.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from motorec.evaluation import Evaluator
from motorec.evaluation.protocol import DotScorer
from motorec.evaluation.tradeoff import WARM_ONLY_OFFSET, TradeoffPoint, best_valid_offset, warm_floor_offset
from motorec.experiments.coldstart import paired_table
from motorec.models.factory import load_trained
from motorec.models.motorec_model import merge_scores, score_moments
from motorec.tokenizers.rqvae import mlp
from rescore import runs_parser, write_report

OFFSETS = [round(x, 3) for x in np.arange(-0.5, 1.0001, 0.125)]
GROUPS = ("all", "warm", "cold@full", "cold@cold")
WARM_RETENTION = 0.85


def fit_generator(content: Tensor, target: Tensor, warm: Tensor, seed: int) -> Tensor:
    """g(content) for every item: MLP fitted on the warm items by MSE (a tenth held out for early stopping)."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = mlp([content.shape[1], 256, target.shape[1]])
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-5)
    items = torch.nonzero(warm).squeeze(1)
    items = items[torch.randperm(len(items), generator=gen)]
    held, fit = items[: len(items) // 10], items[len(items) // 10 :]
    best, state = float("inf"), None
    for step in range(3000):
        batch = fit[torch.randint(len(fit), (256,), generator=gen)]
        loss = ((net(content[batch]) - target[batch]) ** 2).sum(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 99:
            with torch.no_grad():
                held_loss = float(((net(content[held]) - target[held]) ** 2).sum(1).mean())
            if held_loss < best:
                best, state = held_loss, {k: v.clone() for k, v in net.state_dict().items()}
    assert state is not None
    net.load_state_dict(state)
    with torch.no_grad():
        return net(content)


def generator_scorer(u_w: Tensor, i_w: Tensor, warm: Tensor, offset: float) -> DotScorer:
    """Every item by u_w . i_w standardised over the warm items' moments; cold items + offset."""
    mu, sd = score_moments(u_w, i_w[warm])
    cold = (~warm).to(i_w.dtype).unsqueeze(1)
    users = torch.cat([u_w / sd, -mu / sd, torch.full_like(mu, offset)], 1)
    return DotScorer(users, torch.cat([i_w, torch.ones_like(cold), cold], 1))


@torch.no_grad()
def score_seed(run: Path, seed: int) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
    """{placement: {offset: {split: {group: recall@20, "cold_share@20": share}}}} of one seed's
    checkpoint; offset WARM_ONLY_OFFSET ranks every item without train interactions last."""
    ds, _, model = load_trained(run, seed)
    evaluator = Evaluator(ds, "cpu", ks=(20,))
    model.eval()
    content = model.item_content()
    u_c, c = model._content_user_vectors(content), model.unit_content(content)
    u_id, i_id = model._id_channel()
    warm = model.warm
    with torch.enable_grad():
        generated = fit_generator(c, i_id, warm, seed)
    u_w = torch.cat([u_c, u_id], 1)
    i_gen = torch.cat([c, torch.where(warm.unsqueeze(1), i_id, generated)], 1)

    def shift(offset: float) -> DotScorer:
        return DotScorer(*merge_scores(u_w, torch.cat([c, i_id], 1), u_c, c, warm, offset))

    out: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    for name, scorer in (("shift", shift), ("generator", lambda o: generator_scorer(u_w, i_gen, warm, o))):
        out[name] = {}
        for offset in [WARM_ONLY_OFFSET, *OFFSETS]:
            results = {split: evaluator.evaluate(scorer(offset), split) for split in ("valid", "test")}
            out[name][str(offset)] = {
                split: {**{g: r.get(g, "recall@20") for g in GROUPS}, "cold_share@20": r.get("all", "cold_share@20")}
                for split, r in results.items()
            }
    return out


def best_other(table: list[dict[str, Any]], dataset: str) -> dict[str, Any]:
    """The table row (not MoToRec) with the highest mean test `all` Recall@20 on this dataset."""
    rows = [r for r in table if r["dataset"] == dataset and r["model"] != "motorec" and r.get("status") == "ok"]
    return max(rows, key=lambda r: r["test"]["all"]["recall@20"][0])


def summarise(per_seed: dict[int, dict], placement: str, other: dict[str, Any], lightgcn_warm: float) -> dict[str, Any]:
    """The valid-chosen offsets of one placement and their test figures (mean over seeds; warm
    also as a multiple of LightGCN's; `all` paired against the best other row)."""
    seeds = sorted(per_seed)

    def mean(offset: str, split: str, group: str) -> float:
        return float(np.mean([per_seed[s][placement][offset][split][group] for s in seeds]))

    warm_only = str(WARM_ONLY_OFFSET)
    curve = [
        TradeoffPoint(float(o), "valid", {g: mean(o, "valid", g) for g in GROUPS}, mean(o, "valid", "cold_share@20"))
        for o in [warm_only, *map(str, OFFSETS)]
    ]
    choices = {"valid_all": best_valid_offset(curve[1:]), "warm_retention": warm_floor_offset(curve, WARM_RETENTION)}
    out: dict[str, Any] = {"test_warm_no_cold_items": mean(warm_only, "test", "warm")}
    for rule, chosen in choices.items():
        if chosen is None:
            out[rule] = None  # no offset keeps the floor
            continue
        offset = str(chosen)
        test = {g: [per_seed[s][placement][offset]["test"][g] for s in seeds] for g in (*GROUPS, "cold_share@20")}
        point = {
            "dataset": other["dataset"],
            "model": f"motorec-{placement}",
            "status": "ok",
            "per_seed": {str(s): {"all": {"recall@20": v}} for s, v in zip(seeds, test["all"])},
        }
        [paired] = paired_table([point, other], [{"reference": other["model"], "group": "all"}])
        out[rule] = {
            "offset": chosen,
            "valid": {g: mean(offset, "valid", g) for g in GROUPS},
            "test_mean": {g: float(np.mean(v)) for g, v in test.items()},
            "test_std": {g: float(np.std(v)) for g, v in test.items()},  # as the benchmark table
            "test_warm_over_lightgcn": round(float(np.mean(test["warm"])) / lightgcn_warm, 2),
            "all_minus_best_other": paired,
        }
    return out


def main() -> None:
    parser = runs_parser(__doc__)
    parser.add_argument("--table", type=Path, required=True, help="the benchmark table's compare.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    table = json.loads(args.table.read_text())
    runs = []
    for run in args.runs:
        results = json.loads((run / "results.json").read_text())
        per_seed = {s: score_seed(run, s) for s in results["config"]["seeds"]}
        other = best_other(table, results["dataset"])
        lightgcn = next(r for r in table if r["dataset"] == results["dataset"] and r["model"] == "lightgcn")
        lightgcn_warm = lightgcn["test"]["warm"]["recall@20"][0]
        runs.append(
            {
                "run": str(run),
                "dataset": results["dataset"],
                "split_sha256": results["split_sha256"],
                "seeds": results["config"]["seeds"],
                "lightgcn_test_warm": lightgcn_warm,
                "chosen": {p: summarise(per_seed, p, other, lightgcn_warm) for p in ("shift", "generator")},
                "per_seed": {str(s): v for s, v in per_seed.items()},
            }
        )
        print(json.dumps({"dataset": results["dataset"], "chosen": runs[-1]["chosen"]}, indent=1), flush=True)
    write_report(args.out, {"offsets": OFFSETS, "warm_retention": WARM_RETENTION, "runs": runs})


if __name__ == "__main__":
    main()
