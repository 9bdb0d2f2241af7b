"""Typed configs of the tasks over semantic IDs: next-item generation (TIGER; SASRec as its item-ID
baseline) and rating prediction (DCN), run by `motorec exp generative` and `motorec exp rank`.

Layers, later wins: configs/tasks/defaults.yaml < configs/tasks/ids.yaml (the one `ids:` block,
for tasks over semantic IDs) < configs/tasks/<task>.yaml < --config FILE < --set key=value. The
merged mapping is validated once into the task's class, so a typo, a wrong type or a value out of
range is an error naming the key (and the layer that set it) before anything runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar, TypeVar

from pydantic import Field, ValidationInfo, field_validator

from motorec.config import ConfigModel, Device, NonNegativeInt, Probability, Seeds, layer_files, validate_params
from motorec.generative.ids import IdsConfig
from motorec.generative.ranking import DCNParams
from motorec.generative.sasrec import SASRecParams
from motorec.generative.tiger import TIGERParams
from motorec.training.ranking import RankTrainConfig
from motorec.training.sequence import SequenceTrainConfig


class Threads(ConfigModel):
    threads: Annotated[int, Field(ge=0, le=1024)] = 0  # torch CPU threads (0 = torch's default)


class GenerativeTrain(SequenceTrainConfig, Threads):
    """TIGER's training, with the warm restart (any IDs) that generator fine-tuning is built on."""

    warm_restart: bool  # warmup_epochs, restart_steps more steps with a fresh optimiser, then train to early stopping
    warmup_epochs: NonNegativeInt  # also the warm-up of mmq-ft with ids.mmq.ft_objective=generator
    restart_steps: NonNegativeInt  # without the tokenizer; the joint stage takes ids.mmq.ft_steps steps


class SASRecTrain(SequenceTrainConfig, Threads):
    pass


class RankTrain(RankTrainConfig, Threads):
    pass


class ChronologicalSplit(ConfigModel):
    test_frac: Probability  # the last share of the log by time
    valid_frac: Probability  # the share before it, carved from train

    @field_validator("valid_frac")
    @classmethod
    def _leaves_train(cls, valid_frac: float, info: ValidationInfo) -> float:
        if valid_frac + info.data.get("test_frac", 0.0) >= 1:
            raise ValueError("valid_frac + test_frac must leave a train part (< 1)")
        return valid_frac


class Task(ConfigModel):
    """What every task has: device and seeds; `file` is its layer under configs/tasks/."""

    file: ClassVar[str]
    device: Device
    seeds: Seeds


class GenerativeTask(Task):
    """TIGER over semantic IDs (`motorec exp generative --ids rqvae|pq|mmq|mmq-ft`)."""

    file = "generative"
    train: GenerativeTrain
    model: TIGERParams
    ids: IdsConfig


class SASRecTask(Task):
    """SASRec over item IDs, the generative task's baseline (`motorec exp generative --ids sasrec`)."""

    file = "sasrec"
    train: SASRecTrain
    model: SASRecParams


class RankTask(Task):
    """DCN-V2 rating > 3 with item-ID / semantic-ID features (`motorec exp rank`)."""

    file = "rank"
    train: RankTrain
    model: DCNParams
    split: ChronologicalSplit
    ids: IdsConfig


T = TypeVar("T", bound=Task)


def load_task(schema: type[T], config_file: str | Path | None = None, overrides: list[str] | None = None) -> T:
    """The validated config of a task with the user's config file and `--set` overrides."""
    has_ids = "ids" in schema.model_fields
    files = ["tasks/defaults.yaml", *(["tasks/ids.yaml"] if has_ids else []), f"tasks/{schema.file}.yaml"]
    # the ids block starts from every tokenizer's defaults, so each of their keys can be set
    base = {"ids": IdsConfig().model_dump(mode="json")} if has_ids else None
    origins: dict[str, str] = {}
    cfg = layer_files(files, config_file, overrides, origins, base)
    return validate_params(schema, cfg, "", origins)
