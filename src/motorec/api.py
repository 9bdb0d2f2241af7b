"""motorec's Python API, for notebooks and scripts; the CLI's train/evaluate/export are layers over it.

    import motorec
    ds = motorec.load_dataset("../shared/data/ml100k-mm", split="ml100k-mm-cold.inter")
    run = motorec.train(ds, "motorec", seeds=[2026])
    print(run.metrics["test"]["cold@cold"]["recall@20"])

Ids: `user` and `item` integers are the dataset's internal indices (0..n-1, as in the .inter file);
where an item may also be named by the dataset's own id (`tokens`, `explain`), pass it as a string
("50" is MovieLens movie_id 50 through i_id_mapping.csv), as the service does.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from motorec.data import Dataset
from motorec.data import load_dataset as _load_dataset
from motorec.errors import MotorecError

if TYPE_CHECKING:  # imported where used: `import motorec` stays light
    from motorec.config import RunConfig
    from motorec.models.base import Recommender
    from motorec.reports.tokens import RunTokens

__all__ = ["Run", "compare", "load_dataset", "load_run", "train"]


def load_dataset(path: str | os.PathLike, split: str | None = None, drop_users_without_train: bool = False) -> Dataset:
    """A dataset folder (MMRec or LC-Rec layout) or 'synthetic' / 'synthetic-cold', with its split.

    The dataset remembers where it came from, so runs trained on it can be reopened later.
    """
    return _load_dataset(path, split=split, drop_users_without_train=drop_users_without_train)


def _flatten(prefix: str, value: Any) -> Iterable[tuple[str, Any]]:
    if isinstance(value, Mapping) and value:
        for k, v in value.items():
            yield from _flatten(f"{prefix}.{k}", v)
    else:
        yield prefix, value


def settings_of(seeds: list[int] | None, overrides: Mapping[str, Any]) -> list[str]:
    """Keyword settings as `--set key=value` strings: `train={"epochs": 5}` or `train__epochs=5` or
    a bare key that names one config key (`epochs=5`)."""
    from motorec.experiments.tune import as_overrides

    flat = {"seeds": [int(s) for s in seeds]} if seeds is not None else {}
    for key, value in overrides.items():
        flat.update(_flatten(key.replace("__", "."), value))
    return as_overrides(flat)


class Run:
    """A finished training run: its directory, metrics, and the trained model on demand.

    The model and dataset are loaded on first use (from the run's saved config and best-valid
    checkpoint of `seed`, the run's first seed by default).
    """

    def __init__(self, directory: str | os.PathLike, dataset: Dataset | None = None, seed: int | None = None) -> None:
        from motorec.models.factory import read_results

        self.dir = Path(directory)
        self.metrics: dict[str, Any] = read_results(self.dir)
        self.seed = int(self.metrics["seeds"][0] if seed is None else seed)
        self._dataset = dataset
        self._config: RunConfig | None = None
        self._model: Recommender | None = None
        self._tokens: RunTokens | None = None

    def __repr__(self) -> str:
        cold = self.metrics["test"].get("cold@cold", {}).get("recall@20")
        extra = f", cold@cold R@20 {cold:.4f}" if cold is not None else ""
        return (
            f"Run({str(self.dir)!r}, model={self.model_name!r}, dataset={self.metrics['dataset']!r}, "
            f"test R@20 {self.metrics['test']['all']['recall@20']:.4f}{extra})"
        )

    @property
    def model_name(self) -> str:
        return self.metrics["config"]["model_name"]

    def _load(self) -> tuple[Dataset, RunConfig, Recommender]:
        from motorec.models.factory import load_trained

        if self._model is None or self._config is None or self._dataset is None:
            self._dataset, self._config, self._model = load_trained(self.dir, self.seed, self._dataset)
        return self._dataset, self._config, self._model

    @property
    def dataset(self) -> Dataset:
        if self._dataset is None:
            return self._load()[0]
        return self._dataset

    @property
    def config(self) -> RunConfig:
        """The run's validated config (as `seed` was trained: its backbone filled in)."""
        return self._load()[1]

    @property
    def model(self) -> Recommender:
        """The trained Recommender (best-valid weights of `seed`)."""
        return self._load()[2]

    def score(self, users: int | Iterable[int]) -> np.ndarray:
        """Scores of these users against every item: (len(users), n_items)."""
        import torch

        users = np.atleast_1d(np.asarray(users, dtype=np.int64))
        bad = users[(users < 0) | (users >= self.dataset.n_users)]
        if len(bad):
            raise MotorecError(f"unknown user {bad[0]}: this run knows users 0..{self.dataset.n_users - 1}.")
        model = self.model
        with torch.no_grad():
            model.prepare_scoring()
            try:
                return model.full_sort_predict(torch.from_numpy(users).to(model.ctx.device)).cpu().numpy()
            finally:
                model.finish_scoring()

    def recommend(self, user: int, k: int = 20, exclude_seen: bool = True) -> np.ndarray:
        """The user's top-k item indices (ties broken by item index; train items left out by default)."""
        return self.model.recommend(int(user), k, exclude_seen)

    def _run_tokens(self) -> RunTokens:
        from motorec.reports.tokens import RunTokens

        if self._tokens is None:
            self._tokens = RunTokens.of(self.dataset, self.model)
        return self._tokens

    def tokens(self, item: int | str) -> list[dict[str, Any]]:
        """The item's tokens: one {modality, level, code, kind} per token slot."""
        return self._run_tokens().tokens(item)

    def explain(
        self, item: int | str | None = None, token: str | None = None, max_items: int = 10, n_words: int = 8
    ) -> dict[str, Any]:
        """What an item's tokens mean (item=...), or one token ('MODALITY:LEVEL:CODE'): the training
        items that share it and the words most typical of them against the catalogue."""
        from motorec.tokenizers.meaning import parse_token

        if item is not None and token is None:
            return self._run_tokens().explain_item(item, max_items, n_words)
        if token is not None and item is None:
            return self._run_tokens().explain_token(*parse_token(token), max_items=max_items, n_words=n_words)
        raise MotorecError("explain: give exactly one of item or token.")

    def evaluate(self, split: str = "test", topk_file: str | os.PathLike | None = None) -> dict[str, dict[str, float]]:
        """Metrics per group of the best-valid checkpoint on valid or test (and the top-50 lists, if asked)."""
        from motorec.evaluation import write_topk
        from motorec.training.evaluate import evaluate_loaded

        result = evaluate_loaded(self.dataset, self.config, self.model, split, topk_file is not None)
        if topk_file is not None:
            write_topk(topk_file, result.users, result.topk)
        return result.metrics

    def save(self, directory: str | os.PathLike) -> Run:
        """Copy the run (results, checkpoints, top-K lists) to `directory` and use it from there."""
        target = Path(directory)
        if target.resolve() == self.dir.resolve():
            return self
        if target.exists() and any(target.iterdir()):
            raise MotorecError(f"{target}: exists and is not empty; choose a new folder for the run.")
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        shutil.copytree(self.dir, staging, dirs_exist_ok=True)
        if target.exists():
            target.rmdir()
        os.replace(staging, target)
        self.dir = target
        return self

    def export(self, bundle_dir: str | os.PathLike, **options: Any) -> dict[str, Any]:
        """A serving bundle for `motorec serve` (options as `serving.export.export_bundle`); the manifest."""
        from motorec.serving.export import export_bundle

        return export_bundle(self.dir, bundle_dir, seed=self.seed, dataset=self._dataset, **options)


def load_run(directory: str | os.PathLike, dataset: Dataset | None = None, seed: int | None = None) -> Run:
    """A run written by `motorec.train` / `motorec train` (pass `dataset` for one trained in memory)."""
    return Run(directory, dataset, seed)


def train(
    data: str | os.PathLike | Dataset,
    model: str,
    /,
    *,
    seeds: list[int] | None = None,
    out: str | os.PathLike | None = None,
    split: str | None = None,
    config: str | os.PathLike | None = None,
    settings: list[str] | None = None,
    overwrite: bool = False,
    resume: bool = False,
    allow_epochs_change: bool = False,
    **overrides: Any,
) -> Run:
    """Train `model` on a dataset (a loaded Dataset, a folder or 'synthetic-cold') over `seeds`.

    Config keys are keyword arguments (`train={"epochs": 20}`, `model={"n_layers": 2}`, `train__lr=0.01`,
    a bare key naming one config key: `patience=5`) or `settings=["train.epochs=20"]` as on the command line. Without `out` the run is written to a
    fresh temporary folder (`run.dir`; keep it with `run.save(dir)`).
    """
    from motorec.training.runner import run_experiment

    if out is None:
        out = tempfile.mkdtemp(prefix=f"motorec-{model}-")
    run_experiment(
        data,
        model,
        out,
        split,
        config,
        list(settings or []) + settings_of(seeds, overrides),
        overwrite,
        resume,
        allow_epochs_change,
    )
    return Run(out, data if isinstance(data, Dataset) else None)


def compare(
    datasets: Iterable[str | Dataset],
    models: Iterable[str],
    seeds: list[int] | None = None,
    out: str | os.PathLike | None = None,
    **overrides: Any,
):
    """Every model on every dataset over `seeds`: a pandas DataFrame with one row per (dataset, model)
    and test mean/std of Recall@20 and NDCG@20 per group (`motorec compare`'s table; written to `out`,
    a temporary folder by default, where an interrupted comparison resumes)."""
    import pandas as pd

    from motorec.experiments.compare import compare as run_compare
    from motorec.experiments.compare import flat_row

    out = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="motorec-compare-"))
    rows = run_compare(list(models), list(datasets), out, settings_of(seeds, overrides))
    frame = pd.DataFrame([flat_row(r) for r in rows])
    frame.attrs["out"] = str(out)
    return frame.dropna(axis=1, how="all")
