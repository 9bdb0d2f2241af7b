"""Task configs (configs/tasks/): the packaged layers validate, the one `ids:` block is shared with
only the generator's MMQ fine-tuning overridden, and bad values are errors naming the key."""

from __future__ import annotations

import pytest

from motorec.config import packaged
from motorec.errors import MotorecError
from motorec.experiments.tasks import GenerativeTask, RankTask, SASRecTask, load_task
from motorec.generative.ids import IdsConfig


def test_packaged_tasks_validate_with_their_measured_defaults():
    gen, sasrec, rank = load_task(GenerativeTask), load_task(SASRecTask), load_task(RankTask)
    assert gen.seeds == sasrec.seeds == rank.seeds == [2026, 2027, 2028] and gen.device == "auto"
    assert (gen.train.epochs, gen.train.batch_size, gen.train.patience, gen.train.eval_batch_size) == (30, 256, 4, 256)
    s = sasrec.train
    assert (s.epochs, s.batch_size, s.patience, s.eval_batch_size) == (100, 128, 5, 512)
    assert (rank.train.epochs, rank.train.batch_size, rank.train.weight_decay, rank.train.patience) == (
        20,
        1024,
        1e-6,
        2,
    )
    assert (
        gen.model.causal
        and gen.model.level_loss == "trie"
        and sasrec.model.n_heads == 2
        and rank.model.hidden == [128, 64]
    )
    assert (rank.split.test_frac, rank.split.valid_frac) == (0.1, 0.1)
    # one ids block: the tasks differ only where generation measured other MMQ fine-tuning values
    differs = {k for k, v in gen.ids.mmq.model_dump().items() if rank.ids.mmq.model_dump()[k] != v}
    assert differs == {"ft_steps", "ft_lr", "ft_scope", "ft_objective"}
    g, r = gen.ids.mmq, rank.ids.mmq
    assert (g.ft_steps, g.ft_lr, g.ft_scope, g.ft_objective) == (200, 5e-5, "shared", "generator")
    assert (r.ft_steps, r.ft_lr, r.ft_scope, r.ft_objective) == (150, 5e-4, "fused", "next_item")
    assert gen.ids.rqvae == rank.ids.rqvae and gen.ids.pq == rank.ids.pq and gen.ids.rqvae.codebook_size == 256
    assert "ids" not in SASRecTask.model_fields  # item IDs: no tokenizer
    for name in ("tiger", "sasrec", "dcn"):  # not registered Recommenders: no model config of `motorec train`
        assert not packaged(f"models/{name}.yaml").is_file()


def test_every_tokenizer_key_is_settable_not_only_those_the_yaml_lists():
    task = load_task(
        GenerativeTask, overrides=["ids.rqvae.warmup_epochs=3", "ids.mmq.sinkhorn_epsilon=0.2", "ids.pq.opq=true"]
    )
    assert task.ids.rqvae.warmup_epochs == 3 and task.ids.mmq.sinkhorn_epsilon == 0.2 and task.ids.pq.opq
    assert IdsConfig().rqvae.warmup_epochs == 20  # untouched defaults are the tokenizer's own


@pytest.mark.parametrize(
    "schema,override,key,rule",
    [
        (GenerativeTask, "train.lr=-1", "train.lr", "must be > 0"),
        (GenerativeTask, "train.patience=0", "train.patience", "must be >= 1"),
        (GenerativeTask, "model.level_loss=beam", "model.level_loss", "must be one of"),
        (GenerativeTask, "model.n_heads=3", "model.n_heads", "must divide d_model (128)"),
        (GenerativeTask, "model.dropout=1.5", "model.dropout", "must be < 1"),
        (GenerativeTask, "ids.mmq.collisions=hash", "ids.mmq.collisions", "must be one of"),
        (GenerativeTask, "ids.mmq.shared_codebook_size=1", "ids.mmq.shared_codebook_size", "must be 0"),
        (GenerativeTask, "ids.rqvae.codebook_size=1", "ids.rqvae.codebook_size", "must be >= 2"),
        (GenerativeTask, "ids.pq.subspaces=0", "ids.pq.subspaces", "must be >= 1"),
        (GenerativeTask, "seeds=[]", "seeds", "at least 1"),
        (SASRecTask, "train.eval_batch_size=0", "train.eval_batch_size", "must be >= 1"),
        (RankTask, "split.valid_frac=0.95", "split.valid_frac", "must leave a train part"),
        (RankTask, "model.cross_layers=-1", "model.cross_layers", "must be >= 0"),
        (RankTask, "train.weight_decay=-0.1", "train.weight_decay", "must be >= 0"),
    ],
)
def test_bad_values_name_the_key_the_rule_and_the_layer(schema, override, key, rule):
    with pytest.raises(MotorecError) as err:
        load_task(schema, overrides=[override])
    message = str(err.value)
    assert f"config key '{key}'" in message and rule in message and f"--set '{override}'" in message


def test_unknown_keys_and_keys_of_another_task_are_refused():
    with pytest.raises(MotorecError, match=r"unknown config key 'ids.mmq.w_ortho'. Did you mean 'ids.mmq.w_orth'"):
        load_task(GenerativeTask, overrides=["ids.mmq.w_ortho=0"])
    with pytest.raises(MotorecError, match=r"unknown config key 'train.warm_restart'"):
        load_task(SASRecTask, overrides=["train.warm_restart=true"])  # TIGER's schedule, not SASRec's
    with pytest.raises(MotorecError, match=r"unknown config key 'ids.mmq.epochs'"):
        load_task(SASRecTask, overrides=["ids.mmq.epochs=1"])


def test_a_config_file_layer_is_named_in_errors(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("train:\n  batch_size: 0\n")
    with pytest.raises(MotorecError) as err:
        load_task(RankTask, config_file=path)
    assert "config key 'train.batch_size'" in str(err.value) and str(path) in str(err.value)
