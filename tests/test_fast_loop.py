"""The fast loop: no redundant old-log-prob pass (the sampler's numbers are reused when they are
the same numbers) and top-layer training (``model.lora.layers``, ``model.trainable_layers``)."""

from __future__ import annotations

import pytest
import torch

from pawkit.config import load_config
from pawkit.protocol import UsageError
from pawkit.train.trainer import Trainer


def config(tmp_path, *extra):
    return load_config(
        "gridnav",
        overrides=[f"trainer.output_dir={tmp_path}", "rollout.tasks_per_step=2", "rollout.group_size=2",
                   "trainer.eval_every=0", "trainer.early_stop_success=null", "trainer.eval_before_after=false",
                   "trainer.dump_trajectories_every=0", *extra],
    )


@pytest.mark.parametrize("constrained", [True, False])
def test_sampled_logprobs_and_entropies_equal_the_recomputation_pass(tmp_path, constrained):
    extra = ["rollout.temperature=0.7", "rollout.top_p=0.9", "algorithm.kl_coef=0.05"]
    if not constrained:
        extra += ["rollout.constrained=false", "rollout.max_new_tokens=6"]
    trainer = Trainer(config(tmp_path, *extra))
    try:
        assert trainer.reuses_sampled_logprobs()  # auto: one epoch, float32, no bf16
        batch = trainer.rollout()
        seqs = trainer.sequences(batch)
        old_s, ref_s, ent_s = trainer.old_logprobs(seqs, batch.samples)  # reused + reference-only pass
        old_r, ref_r, ent_r = trainer.old_logprobs(seqs)  # the full recomputation pass
    finally:
        trainer.close()
    assert sum(len(o) for o in old_s) >= 8
    for a, b in zip(old_s, old_r):
        assert a.shape == b.shape and (a - b).abs().max().item() <= 1e-5
    assert (ent_s - ent_r).abs().max().item() <= 1e-5 and ent_r.max().item() > 0.0
    assert all(torch.equal(a, b) for a, b in zip(ref_s, ref_r))  # the same reference pass


def test_the_pass_runs_only_when_needed(tmp_path):
    def forwards(*extra):
        trainer = Trainer(config(tmp_path / "_".join(extra).replace("=", "-"), *extra))
        calls = [0]
        trainer.model.register_forward_pre_hook(lambda *a: calls.__setitem__(0, calls[0] + 1))
        try:
            batch = trainer.rollout()
            calls[0] = 0
            trainer.old_logprobs(trainer.sequences(batch), batch.samples)
        finally:
            trainer.close()
        return calls[0]

    assert forwards("algorithm.kl_coef=0") == 0  # nothing to compute: the sampler's numbers are the old ones
    assert forwards("algorithm.kl_coef=0", "algorithm.ppo_epochs=2") >= 1  # several epochs: old ≠ current after epoch 1
    assert forwards("algorithm.kl_coef=0", "algorithm.old_logprobs=recompute") >= 1
    assert forwards("algorithm.kl_coef=0", "trainer.bf16=true") >= 1  # autocast differs from sampling: auto recomputes


def _changed(before, model):
    return {n for n, p in model.named_parameters() if not torch.equal(before[n], p.detach())}


@pytest.mark.parametrize("extra, trained", [
    (("model.trainable_layers=last:1",), {"model.layers.1.", "model.norm."}),
    (("model.lora.enabled=true", "model.lora.layers=[1]"), {"base_model.model.model.layers.1."}),
])
def test_only_the_top_layers_train(tmp_path, extra, trained):
    trainer = Trainer(config(tmp_path, "trainer.lr=0.01", "algorithm.entropy_coef=0.1", *extra))  # a gradient whatever the returns
    try:
        before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
        trainable = {n for n, p in trainer.model.named_parameters() if p.requires_grad}
        metrics = trainer.train_step()
        changed = _changed(before, trainer.model)
    finally:
        trainer.close()
    assert metrics["loss/skipped_update"] == 0.0 and changed
    assert changed <= trainable and all(any(n.startswith(t) for t in trained) for n in trainable)
    # nothing below the lowest trained block: no block-0 parameter, no embedding
    assert not any(".layers.0." in n or "embed" in n for n in trainable)


def test_a_layer_spec_the_model_cannot_meet_is_one_line(tmp_path):
    with pytest.raises(UsageError, match=r"^model.lora.layers=last:5: the model has only 2 blocks$"):
        Trainer(config(tmp_path, "model.lora.enabled=true", "model.lora.layers=last:5"))
    with pytest.raises(UsageError, match=r"^model.trainable_layers=\[2\]: block indices must be 0 … 1$"):
        Trainer(config(tmp_path, "model.trainable_layers=[2]"))
