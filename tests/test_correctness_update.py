"""The RL update computes and logs what happened (issue #17, items 2, 5 and 8), exactly.

- Dropout: a checkpoint with ``attention_dropout: 0.1`` (or a LoRA adapter with
  ``lora_dropout``) gives identical old log-probs on repeat and a KL of exactly 0 at step 1,
  while the model stays in train mode (gradient checkpointing still recomputes). Before: two
  old-log-prob passes differed by up to 0.020 and the step-1 KL was 4.1e-6.
- The KL reference is the policy the run starts from: a LoRA run started from a LoRA checkpoint
  has KL exactly 0 at step 1 (before: 0.0024, the adapter-disabled base was the reference), and
  after ``--resume`` its reference is still that starting adapter.
- The logged lr is the one the step's optimizer steps used (before: warm-up step 1 trained at
  0.0015 and logged 0.003), and the schedule advances once per training step, not per PPO
  epoch (before, with ppo_epochs=2 and a linear schedule over 4 steps, the optimizer steps
  went down to 0 at step 3 and to −0.00225 at the last; the log read 0.0015, 0, −0.0015, −0.003).
- Checkpoints restore every random stream, evaluation shifts none of them, and the peak memory
  of a step is that step's.
"""

import random
import sys

import numpy as np
import pytest
import torch

from pawkit.config import ModelConfig, load_config
from pawkit.train.batching import micro_batches
from pawkit.train.models import load_model
from pawkit.train.state import TrainState, rng_preserved
from pawkit.train.trainer import Trainer, train
from pawkit.train.update import REFERENCE_ADAPTER

TIMING = ("seconds", "tokens_per_second", "peak_")


def config(tmp_path, *extra):
    return load_config(
        "gridnav",
        overrides=[f"trainer.output_dir={tmp_path}", "rollout.tasks_per_step=2", "rollout.group_size=4",
                   "trainer.eval_every=0", "trainer.early_stop_success=null", "trainer.steps=1", *extra],
    )


def save_tiny(path, attention_dropout=0.0):
    model, tokenizer = load_model(ModelConfig(name="tiny"))
    model.config.attention_dropout = attention_dropout
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def lora_checkpoint(tmp_path, *extra):
    """A LoRA run's checkpoint after one update: an adapter that is not the identity."""
    cfg = config(tmp_path / "lora-start", "model.lora.enabled=true", "model.lora.r=4", "trainer.save_every=1", *extra)
    train(cfg, show_progress=False)
    return tmp_path / "lora-start" / "checkpoints" / "step-000001" / "model"


def repeat_old_logprobs(trainer):
    seqs = trainer.sequences(trainer.rollout())
    (old1, ref1, ent1), (old2, ref2, ent2) = trainer.old_logprobs(seqs), trainer.old_logprobs(seqs)
    assert torch.equal(ent1, ent2)
    return seqs, old1, old2, ref1, ref2


# ------------------------------------------------------------------------------- dropout (2)


def test_a_dropout_checkpoint_scores_the_same_tokens_identically_and_starts_at_kl_zero(tmp_path):
    path = save_tiny(tmp_path / "dropout", attention_dropout=0.1)
    trainer = Trainer(config(tmp_path / "run", f"model.name={path}", "algorithm.kl_coef=0.01"))
    try:
        assert trainer.model.config.attention_dropout == 0.1 and trainer.reference is not None
        seqs, old1, old2, ref1, ref2 = repeat_old_logprobs(trainer)
        assert all(torch.equal(a, b) for a, b in zip(old1, old2))
        assert all(torch.equal(a, b) for a, b in zip(old1, ref1))  # the policy IS the reference at step 0
        metrics = trainer.train_step()
        assert metrics["loss/kl"] == 0.0
        # Nothing was left changed: the model trains in train mode and saves its own config.
        assert trainer.model.training and trainer.model.config.attention_dropout == 0.1
        assert trainer.model.model.layers[0].self_attn.attention_dropout == 0.1
    finally:
        trainer.close()


@pytest.mark.parametrize("start", ["dropout checkpoint", "LoRA checkpoint"])
def test_dropout_is_off_while_gradient_checkpointing_still_recomputes(tmp_path, start):
    if start == "dropout checkpoint":
        path = save_tiny(tmp_path / "dropout", attention_dropout=0.1)
    else:
        path = lora_checkpoint(tmp_path, "model.lora.dropout=0.1")
    trainer = Trainer(config(tmp_path / "run", f"model.name={path}", "model.gradient_checkpointing=true", "algorithm.kl_coef=0.01"))
    try:
        seqs, old1, old2, ref1, _ = repeat_old_logprobs(trainer)
        assert all(torch.equal(a, b) for a, b in zip(old1, old2))
        calls = []
        attention = next(m for name, m in trainer.model.named_modules() if name.endswith("layers.0.self_attn"))
        handle = attention.register_forward_hook(lambda module, args, out: calls.append(module.training))
        try:
            metrics = trainer.update(seqs, torch.ones(len(seqs)), old1, ref1, torch.zeros(len(seqs)))
        finally:
            handle.remove()
        n = len(micro_batches(seqs, trainer.cfg.trainer.micro_batch_tokens, trainer.tokenizer.pad_token_id, len(trainer.tokenizer)))
        assert calls == [True] * (2 * n)  # forward + the recomputation in backward, in train mode
        assert metrics.result()["loss/kl"] == 0.0
    finally:
        trainer.close()


# --------------------------------------------------------------------------- reference (5)


def test_a_lora_run_from_a_lora_checkpoint_starts_at_kl_zero_with_its_adapter_as_reference(tmp_path):
    start = lora_checkpoint(tmp_path, "model.lora.dropout=0.1")
    trainer = Trainer(config(tmp_path / "run", f"model.name={start}", "algorithm.kl_coef=0.01"))
    try:
        assert trainer.uses_lora and trainer.reference is None and trainer.reference_adapter == REFERENCE_ADAPTER
        assert trainer.model.training  # loading a frozen adapter must not switch the policy to eval mode
        frozen = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if f".{REFERENCE_ADAPTER}." in n}
        trained = {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
        assert frozen and not any(id(p) in trained for n, p in trainer.model.named_parameters() if n in frozen)
        seqs, old1, old2, ref1, ref2 = repeat_old_logprobs(trainer)  # lora_dropout=0.1 in the adapter
        assert all(torch.equal(a, b) for a, b in zip(old1, old2)) and all(torch.equal(a, b) for a, b in zip(old1, ref1))
        metrics = trainer.train_step()
        assert metrics["loss/kl"] == 0.0
        after = dict(trainer.model.named_parameters())
        assert all(torch.equal(after[n], v) and not after[n].requires_grad for n, v in frozen.items())
        assert all(p.requires_grad for n, p in after.items() if ".default." in n)  # flags restored after each pass
        assert trainer.model.active_adapter == "default"
    finally:
        trainer.close()


def test_a_resumed_lora_run_keeps_its_starting_adapter_as_reference(tmp_path):
    start = lora_checkpoint(tmp_path)
    run = ("algorithm.kl_coef=0.01", "trainer.save_every=1", f"model.name={start}")
    train(config(tmp_path / "run", *run), show_progress=False)
    resumed = Trainer(config(tmp_path / "run", *run, "trainer.steps=2"), resume=True)
    fresh = Trainer(config(tmp_path / "fresh", *run))  # the run's step-0 policy
    try:
        assert resumed.state.step == 1 and resumed.reference_adapter == REFERENCE_ADAPTER
        seqs = resumed.sequences(resumed.rollout())
        old, ref, _ = resumed.old_logprobs(seqs)
        step0, _, _ = fresh.old_logprobs(seqs)
        assert all(torch.equal(r, s) for r, s in zip(ref, step0))
        assert any(not torch.equal(o, s) for o, s in zip(old, step0))  # the policy itself did move
    finally:
        resumed.close()
        fresh.close()


@pytest.mark.parametrize("start", ["full-weights checkpoint", "fresh LoRA adapter"])
def test_step_one_kl_is_exactly_zero_from_any_start(tmp_path, start):
    extra = [f"model.name={save_tiny(tmp_path / 'full')}"] if start.startswith("full") else ["model.lora.enabled=true", "model.lora.r=4"]
    trainer = Trainer(config(tmp_path / "run", "algorithm.kl_coef=0.01", *extra))
    try:
        assert (trainer.reference is not None) == start.startswith("full")
        assert trainer.train_step()["loss/kl"] == 0.0
    finally:
        trainer.close()


# ---------------------------------------------------------------------- logged values (8)


def lrs_used(cfg, steps):
    """(lr of every optimizer step, logged loss/lr per step) over ``steps`` training steps."""
    trainer = Trainer(cfg)
    used = []
    trainer.optimizer.register_step_pre_hook(lambda opt, args, kwargs: used.append(opt.param_groups[0]["lr"]))
    try:
        logged = [trainer.train_step()["loss/lr"] for _ in range(steps)]
    finally:
        trainer.close()
    return used, logged


def test_the_logged_lr_is_the_one_the_step_trained_with(tmp_path):
    used, logged = lrs_used(config(tmp_path, "trainer.lr=0.003", "trainer.warmup_steps=2", "trainer.steps=3"), 3)
    assert used == [0.0015, 0.003, 0.003]
    assert logged == used


def test_the_schedule_advances_once_per_training_step_not_per_epoch(tmp_path):
    cfg = config(tmp_path, "trainer.lr=0.003", "trainer.lr_schedule=linear", "algorithm.ppo_epochs=2", "trainer.steps=4")
    used, logged = lrs_used(cfg, 4)
    expected = [0.003 * (1 - k / 4) for k in range(4)]  # 0.003, 0.00225, 0.0015, 0.00075
    assert used == [lr for lr in expected for _ in range(2)]  # both epochs of a step: that step's lr
    assert logged == expected


def draws():
    return random.random(), float(np.random.random()), torch.rand(3).tolist()


def test_a_checkpointed_train_state_restores_every_random_stream():
    torch.manual_seed(1), random.seed(1), np.random.seed(1)
    state = TrainState(cuda_devices=list(range(torch.cuda.device_count()))[:1])
    saved = state.to_dict()
    assert set(saved) >= {"torch_rng", "cuda_rng", "python_rng", "numpy_rng"}
    assert len(saved["cuda_rng"]) == len(state.cuda_devices)
    expected = draws() + ((torch.rand(3, device="cuda").tolist(),) if state.cuda_devices else ())
    torch.manual_seed(2), random.seed(2), np.random.seed(2)
    state.load(saved)
    assert draws() + ((torch.rand(3, device="cuda").tolist(),) if state.cuda_devices else ()) == expected


def test_evaluation_leaves_every_random_stream_as_it_was():
    torch.manual_seed(3), random.seed(3), np.random.seed(3)
    before = (torch.get_rng_state(), random.getstate(), np.random.get_state())
    expected = draws()
    torch.set_rng_state(before[0]), random.setstate(before[1]), np.random.set_state(before[2])
    with rng_preserved([]):
        draws(), draws()
    assert draws() == expected


def test_training_with_evaluations_trains_exactly_as_without(tmp_path):
    runs = []
    for name, every in (("a", 0), ("b", 1)):
        # Sampled evaluations (temperature 1): they draw from the same generators as training.
        cfg = config(tmp_path / name, "trainer.steps=2", f"trainer.eval_every={every}", "trainer.eval_episodes=2",
                     "rollout.eval_temperature=1.0")
        runs.append(train(cfg, show_progress=False))
    plain, evaluated = runs
    assert "eval/success_rate" in evaluated[0] and evaluated[0]["perf/eval_seconds"] > 0
    for a, b in zip(plain, evaluated):
        assert {k: v for k, v in a.items() if not any(t in k for t in TIMING)} == {
            k: v for k, v in b.items() if not any(t in k for t in TIMING) and not k.startswith("eval/")
        }


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-step peak RSS needs /proc/self/clear_refs")
def test_a_steps_peak_memory_is_its_own(tmp_path):
    trainer = Trainer(config(tmp_path))
    try:
        trainer.train_step()
        ballast = np.ones(256 * 2**20 // 8)  # 256 MiB touched between steps (a step itself peaks ~35 MiB above baseline)
        ballast[:] = 2.0
        high = trainer_peak_now()
        del ballast
        metrics = trainer.train_step()
        assert metrics["perf/peak_rss_mb"] < high - 128
    finally:
        trainer.close()


def trainer_peak_now() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
