"""Real faults and what pawkit does about them (issue 9): env exceptions and hangs, garbage
model output, NaN losses, SIGKILL/SIGTERM mid-run, and bad input on the command line.

Nothing here mocks the env or sleeps for timing: faults are injected deterministically (every
k-th env call, a hang that waits forever, an advantage estimator that returns NaN) and
subprocesses are watched by polling the files they write. The envs and the NaN estimator are
registered programmatically from this module, which spawned env workers re-import by name.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from pawkit import plugins
from pawkit.train.checkpoint import MARKER, complete_checkpoints
from pawkit.config import load_config
from pawkit.hookspecs import hookimpl
from pawkit.rollout.generate import Generator, Sampled
from pawkit.train.trainer import Trainer, TrainingStopped, train
from pawkit_adapters.gridnav import GridNavEnv

TIMING = ("seconds", "tokens_per_second", "peak_rss_mb", "peak_gpu_mb")


# ---------------------------------------------------------------------------------- plugins


class FaultyGridNav(GridNavEnv):
    """gridnav whose every ``every``-th reset/step call (counted per process) raises, and whose
    first step hangs forever when ``hang_marker`` names a file that does not exist yet."""

    calls = 0
    injected: list[str] = []

    def __init__(self, every: int = 0, hang_marker: str | None = None, **options):
        super().__init__(**options)
        self.name = "faulty-gridnav"
        self.every, self.hang_marker = every, hang_marker

    def _maybe_fail(self, what: str) -> None:
        FaultyGridNav.calls += 1
        if self.every and FaultyGridNav.calls % self.every == 0:
            FaultyGridNav.injected.append(what)
            raise RuntimeError(f"injected {what} fault #{len(FaultyGridNav.injected)}")

    def reset(self, task=None, seed=None):
        self._maybe_fail("reset")
        return super().reset(task, seed)

    def step(self, command):
        self._maybe_fail("step")
        if self.hang_marker is not None:
            try:  # exactly one step in the whole run hangs: whoever creates the marker
                os.close(os.open(self.hang_marker, os.O_CREAT | os.O_EXCL))
                threading.Event().wait()  # a JVM that stopped answering
            except FileExistsError:
                pass
        return super().step(command)


NAN_CALLS: set[int] = set()  # 1-based calls of the estimator below that explode
_estimator_calls = [0]


def nan_grpo(ctx):
    """GRPO, but 1e30 on the calls listed in NAN_CALLS (a numerical fault injector): finite, so it
    passes the estimator's boundary check, but the gradient norm overflows to inf (a NaN/inf
    advantage itself is a StrategyError naming the estimator: tests/test_strategy_api.py)."""
    grpo = plugins.get("advantage_estimator", "grpo")
    _estimator_calls[0] += 1
    advantages = grpo(ctx)
    return torch.full_like(advantages, 1e30) if _estimator_calls[0] in NAN_CALLS else advantages


@hookimpl
def register_envs(register):
    register("faulty-gridnav", FaultyGridNav, description="test-only gridnav with injected faults")


@hookimpl
def register_advantage_estimators(register):
    register("nan_grpo", nan_grpo)


@pytest.fixture(scope="module", autouse=True)
def _plugin():
    name = plugins.register_plugin(sys.modules[__name__], name="faults-plugin")
    yield
    plugins.unregister_plugin(name)


@pytest.fixture(autouse=True)
def _reset_counters():
    FaultyGridNav.calls, FaultyGridNav.injected = 0, []
    NAN_CALLS.clear()
    _estimator_calls[0] = 0


def tiny(tmp_path, *extra):
    """2 tasks x 2 episodes of gridnav on the tiny model; no evaluation."""
    return load_config(
        "gridnav",
        overrides=[
            f"trainer.output_dir={tmp_path}", "rollout.tasks_per_step=2", "rollout.group_size=2",
            "trainer.eval_every=0", "trainer.early_stop_success=null", "trainer.eval_before_after=false",
            "trainer.dump_trajectories_every=0", *extra,
        ],
    )


def figure(line: str) -> None:
    """Fault figures for the issue's closing note: ``pytest -s tests/test_faults.py | grep fault-figures``."""
    print(f"[fault-figures] {line}")


def comparable(metrics):
    return {k: v for k, v in metrics.items() if not any(t in k for t in TIMING)}


# ---------------------------------------------------------------------------- env faults


def test_env_exceptions_drop_episodes_and_the_run_continues(tmp_path):
    batches = []
    cfg = tiny(tmp_path, "env.name=faulty-gridnav", "env.options.every=7", "trainer.steps=3",
               "trainer.max_env_error_rate=1.0", "trainer.save_every=100")
    history = train(cfg, show_progress=False, on_step=lambda t, m: batches.append(t.last_batch) and False)
    assert [m["step"] for m in history] == [1.0, 2.0, 3.0]
    injected = len(FaultyGridNav.injected)
    assert injected >= 3
    assert sum(m["rollout/env_errors"] for m in history) == injected
    for batch in batches:
        # A dropped episode contributes no samples, not even its turns before the error; the
        # other members of its group keep all of theirs and are trained on (their group's
        # advantage statistics then run over the kept members only).
        kept = [e for e in batch.episodes if e.end_reason != "env_error"]
        assert len(batch.samples) == sum(len(e.transitions) for e in kept)
        assert {s.group_id for s in batch.samples} == {e.group_id for e in kept if e.transitions}
    log = (tmp_path / "env_errors.log").read_text()
    assert log.count("RuntimeError: injected") == 2 * injected  # the head line and the traceback's last line
    assert log.count("Traceback (most recent call last)") == injected and "in _maybe_fail" in log
    assert len(complete_checkpoints(tmp_path)) == 1  # the final step's
    figure(f"env exceptions: {injected} injected ({FaultyGridNav.injected.count('reset')} in reset), "
           f"{injected} episodes dropped, run completed 3/3 steps")


def test_too_many_env_errors_stop_the_run_with_one_line(tmp_path):
    cfg = tiny(tmp_path, "env.name=faulty-gridnav", "env.options.every=1", "trainer.steps=2")
    with pytest.raises(TrainingStopped) as stopped:
        train(cfg, show_progress=False)
    message = str(stopped.value)
    assert "\n" not in message
    assert "4 of 4 episodes" in message and "trainer.max_env_error_rate=0.5" in message and "env_errors.log" in message
    assert "Traceback" in (tmp_path / "env_errors.log").read_text()


def test_a_hung_env_step_times_out_and_the_run_continues(tmp_path):
    marker = tmp_path / "hung-once"
    cfg = tiny(tmp_path / "run", "env.name=faulty-gridnav", f"env.options.hang_marker={marker}", "trainer.steps=2",
               "rollout.num_workers=1", "rollout.step_timeout=2", "trainer.max_env_error_rate=1.0",
               "trainer.save_every=100")
    t0 = time.monotonic()
    history = train(cfg, show_progress=False)
    assert marker.exists()  # the hang really happened
    assert time.monotonic() - t0 < 120
    # One worker holds all four slots: the hung step's timeout restarts it, so the other three
    # episodes (their env state lived in that process) are dropped with it.
    assert history[0]["rollout/env_errors"] == 4.0 and history[1]["rollout/env_errors"] == 0.0
    assert history[1]["loss/pg_loss"] == history[1]["loss/pg_loss"]  # step 2 trained normally (not NaN)
    log = (tmp_path / "run" / "env_errors.log").read_text()
    assert log.count("TimeoutError: slot") == 1 and "step took longer than 2.0s" in log
    assert log.count("its worker was restarted") == 4
    figure("hung env step: 1 injected, timed out after 2 s, 4 episodes dropped (one worker), run completed 2/2 steps")


# ------------------------------------------------------------------------- garbage output


class GarbageGenerator(Generator):
    """The real generator's interface, replying with fixed garbage token sequences in turn."""

    def __init__(self, model, tokenizer, cfg, replies: list[list[int]]):
        super().__init__(model, tokenizer, cfg)
        self.replies, self.calls = replies, 0

    def sample(self, prompts, tries, temperature):
        out = []
        for _ in prompts:
            out.append(self.replies[self.calls % len(self.replies)])
            self.calls += 1
        # No sampler log-probs for made-up replies: the trainer scores them in its own pass.
        return Sampled(out, [[] for _ in out], [[] for _ in out])


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> symbol table (the byte-level tokenizers' alphabet)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def garbage_replies(tokenizer) -> dict[str, tuple[list[int], bool]]:
    """name -> (reply token ids, whether the parser accepts it as a valid action)."""
    eos = tokenizer.eos_token_id
    text = lambda s: tokenizer(s, add_special_tokens=False)["input_ids"] + [eos]  # noqa: E731
    symbol = bytes_to_unicode()
    non_utf8 = tokenizer.convert_tokens_to_ids([symbol[b] for b in b"\xff\xfe\xc3(<action>\x80"]) + [eos]
    return {
        "empty": ([eos], False),
        "huge": (text("north " * 834)[:5000], False),  # 5000 tokens, no EOS: cut at max tokens
        "non-utf8": (non_utf8, False),
        "tagless": (text("I think I should go north now"), False),
        "multi-tag": (text("<think>go</think><action>north</action><action>south</action>"), False),
        "multi-tag-no-think": (text("<action>north</action><action>east</action>"), False),
        "nested": (text("<action><action>north</action></action>"), False),
        "valid": (text("<think>ok</think><action>north</action>"), True),
    }


def test_garbage_replies_are_penalised_invalid_actions_and_never_crash(tmp_path):
    cfg = tiny(tmp_path, "rollout.constrained=false", "rollout.output_format=think_action",
               "rollout.max_new_tokens=5000", "trainer.micro_batch_tokens=4096", "env.options.max_steps=2")
    trainer = Trainer(cfg)
    replies = garbage_replies(trainer.tokenizer)
    trainer.generator = GarbageGenerator(trainer.model, trainer.tokenizer, cfg.rollout, [r for r, _ in replies.values()])
    metrics, batches = [], []
    try:
        for _ in range(2):  # 2 steps x 4 episodes x up to 2 turns: every reply at least once
            metrics.append(trainer.train_step())
            batches.append(trainer.last_batch)
    finally:
        trainer.close()
    decoded = {trainer.tokenizer.decode(ids, skip_special_tokens=True): (name, valid) for name, (ids, valid) in replies.items()}
    seen = set()
    for m, batch in zip(metrics, batches):
        actions = [t.action for e in batch.episodes for t in e.transitions]
        assert m["rollout/env_errors"] == 0.0 and m["loss/skipped_update"] == 0.0 and m["loss/pg_loss"] == m["loss/pg_loss"]
        assert m["rollout/invalid_action_rate"] == pytest.approx(sum(not a.valid for a in actions) / len(actions))
        for action in actions:
            name, valid = decoded[action.raw]
            seen.add(name)
            assert action.valid is valid, name
            assert len(action.command) <= max(cfg.rollout.fallback_chars, 40), name  # never the whole huge reply
    assert seen == set(replies)
    batch = batches[-1]
    assert any("\ufffd" in text for text in decoded)
    # The penalty: an invalid row's score is its episode return minus rollout.invalid_penalty.
    rows_adv = trainer.advantages(batch)
    cfg.rollout.invalid_penalty = 0.0
    no_penalty = trainer.advantages(batch)
    changed = [bool(a != b) for a, b in zip(rows_adv.tolist(), no_penalty.tolist())]
    assert any(changed) and any(s.invalid for s in batch.samples)
    replies_fed = sum(len(e.transitions) for b in batches for e in b.episodes)
    figure(f"garbage replies: {replies_fed} fed ({len(replies)} kinds), 0 crashes, "
           f"{sum(not t.action.valid for b in batches for e in b.episodes for t in e.transitions)} penalised as invalid")


# --------------------------------------------------------------------------------- NaN


def _params(model):
    return [p.detach().clone() for p in model.parameters()]


def test_a_nan_loss_skips_the_update_and_training_continues(tmp_path):
    NAN_CALLS.add(2)
    trainer = Trainer(tiny(tmp_path, "algorithm.name=nan_grpo", "trainer.steps=3"))
    try:
        first = trainer.train_step()
        before = _params(trainer.model)
        lr_steps = trainer.scheduler.last_epoch
        second = trainer.train_step()
        after_nan = _params(trainer.model)
        third = trainer.train_step()
        after = _params(trainer.model)
    finally:
        trainer.close()
    assert first["loss/skipped_update"] == 0.0 and third["loss/skipped_update"] == 0.0
    assert second["loss/skipped_update"] == 1.0 and second["loss/grad_norm"] != second["loss/grad_norm"]  # NaN
    assert trainer.state.nonfinite_skips == 1
    assert all(torch.equal(a, b) for a, b in zip(before, after_nan))  # no update at all
    assert trainer.scheduler.last_epoch == lr_steps + 1  # the schedule advanced only for step 3
    assert any(not torch.equal(a, b) for a, b in zip(after_nan, after))
    assert all(torch.isfinite(p).all() for p in after)
    figure("NaN loss: 1 injected, update skipped, parameters unchanged, run continued")


def test_k_nonfinite_updates_in_a_row_stop_the_run_and_keep_the_last_good_checkpoint(tmp_path):
    from safetensors.torch import load_file

    NAN_CALLS.update(range(2, 100))
    cfg = tiny(tmp_path, "algorithm.name=nan_grpo", "trainer.steps=5", "trainer.save_every=1",
               "trainer.max_nonfinite_in_a_row=2", "trainer.keep_checkpoints=3")
    with pytest.raises(TrainingStopped, match=r"^2 updates in a row had a non-finite loss, gradient or weights \(step 3\)"):
        train(cfg, show_progress=False)
    found = complete_checkpoints(tmp_path)
    assert [p.name for p in found] == ["step-000001", "step-000002"]  # step 3 was never saved
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [(m["step"], m["loss/skipped_update"]) for m in lines] == [(1.0, 0.0), (2.0, 1.0)]
    weights = [load_file(p / "model" / "model.safetensors") for p in found]
    assert weights[0].keys() == weights[1].keys()
    for key in weights[0]:  # the skipped step left the parameters as step 1 made them, finite
        assert torch.equal(weights[0][key], weights[1][key]) and torch.isfinite(weights[1][key]).all()
    figure("NaN x2 in a row: run stopped at step 3 as configured, last good checkpoint step 2 kept")


# --------------------------------------------------------------------- signals, resume


def cli(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "pawkit.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs
    )


def train_args(out: Path, steps: int, *extra: str) -> list[str]:
    return [
        "train", "--env", "gridnav", "--quiet", "model.name=tiny", f"trainer.steps={steps}", f"trainer.output_dir={out}",
        "rollout.tasks_per_step=2", "rollout.group_size=2", "trainer.eval_every=0", "trainer.eval_before_after=false",
        "trainer.early_stop_success=null", "trainer.dump_trajectories_every=0", *extra,
    ]


def wait_for(predicate, proc: subprocess.Popen, timeout: float = 240.0) -> None:
    """Poll (not a fixed sleep) until ``predicate()``; fail if the process ends first."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"process ended (rc {proc.returncode}) first: {proc.stderr.read()[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("timed out waiting")
        time.sleep(0.02)


def metrics_by_step(out: Path) -> dict[float, dict]:
    return {m["step"]: m for m in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())}


def test_sigkill_mid_run_then_resume_matches_an_uninterrupted_run(tmp_path):
    steps = 4
    killed = cli(*train_args(tmp_path / "killed", steps, "trainer.save_every=1"))
    first = tmp_path / "killed" / "checkpoints" / "step-000001" / MARKER
    wait_for(first.exists, killed)
    killed.send_signal(signal.SIGKILL)
    killed.communicate(timeout=60)
    assert killed.returncode == -signal.SIGKILL
    resume_from = int(complete_checkpoints(tmp_path / "killed")[-1].name.split("-")[1])
    assert resume_from < steps, "the run finished before the kill; nothing was tested"
    logged = (tmp_path / "killed" / "metrics.jsonl").read_text().count("\n")  # steps done when killed
    # Whatever the kill left (a .tmp folder, a logged step without its checkpoint) is ignored.
    # Both runs below stop at resume_from + 1 steps to save time: gridnav's constant LR
    # schedule does not depend on trainer.steps, so that changes nothing before that step.
    resumed = subprocess.run(
        [sys.executable, "-m", "pawkit.cli", *train_args(tmp_path / "killed", resume_from + 1), "--resume"],
        capture_output=True, text=True, timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    straight = subprocess.run(
        [sys.executable, "-m", "pawkit.cli", *train_args(tmp_path / "straight", resume_from + 1)],
        capture_output=True, text=True, timeout=300,
    )
    assert straight.returncode == 0, straight.stderr[-2000:]
    after_kill, uninterrupted = metrics_by_step(tmp_path / "killed"), metrics_by_step(tmp_path / "straight")
    step = float(resume_from + 1)
    assert comparable(after_kill[step]) == comparable(uninterrupted[step])
    lines = (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [float(s) for s in range(1, resume_from + 2)]
    figure(f"SIGKILL: killed after {logged} logged steps, checkpoint {resume_from} complete; resumed, step "
           f"{resume_from + 1} metrics equal the uninterrupted run's; steps lost: {logged - resume_from}")


def test_sigterm_saves_a_complete_checkpoint_and_exits_cleanly(tmp_path):
    out = tmp_path / "run"
    proc = cli(*train_args(out, 50, "trainer.save_every=1000"))
    wait_for(lambda: (out / "metrics.jsonl").exists() and (out / "metrics.jsonl").read_text().count("\n") >= 1, proc)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 3, stderr[-2000:]  # stopped before trainer.steps: not "finished" (pawkit.cli)
    assert "Traceback" not in stderr
    reached = max(metrics_by_step(out))
    assert 1 <= reached < 50
    assert f"stopped at step {int(reached)} of 50 by a signal" in stderr
    found = complete_checkpoints(out)
    assert [p.name for p in found] == [f"step-{int(reached):06d}"]  # save_every=1000: only the signal's save
    assert json.loads((found[0] / MARKER).read_text())["step"] == int(reached)
    assert not list((out / "checkpoints").glob(".tmp-*"))
    figure(f"SIGTERM: stopped at step {int(reached)}, exit 3, checkpoint of step {int(reached)} written, 0 steps lost")


def test_resume_forgets_steps_logged_after_the_checkpoint(tmp_path):
    from pawkit.train.runlog import RunLogger

    lines = [json.dumps({"step": float(s)}) for s in (1, 2, 3)]
    (tmp_path / "metrics.jsonl").write_text("\n".join(lines) + '\n{"step": 4.0, "succ')  # killed mid-write
    with RunLogger(tmp_path, tiny(tmp_path), start=2, enabled=False) as log:
        log.step({"step": 3.0, "resumed": True})
    written = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert written == [{"step": 1.0}, {"step": 2.0}, {"step": 3.0, "resumed": True}]


def test_a_checkpoint_without_its_marker_is_never_loaded(tmp_path):
    from pawkit.train.checkpoint import latest

    good = tmp_path / "checkpoints" / "step-000001"
    torn = tmp_path / "checkpoints" / "step-000002"
    tmp = tmp_path / "checkpoints" / ".tmp-step-000003-123"
    for folder in (good, torn, tmp):
        (folder / "model").mkdir(parents=True)
    (good / MARKER).write_text('{"step": 1}')
    (tmp / MARKER).write_text('{"step": 3}')  # renamed into place only after the marker is written
    assert latest(tmp_path) == good


# -------------------------------------------------------------------------- bad input


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pawkit.cli", *args], capture_output=True, text=True, timeout=300,
        env={**os.environ, **(env or {})},
    )


def one_line_exit_2(out: subprocess.CompletedProcess, *needles: str) -> None:
    assert out.returncode == 2, out.stderr[-2000:]
    assert "Traceback" not in out.stderr
    assert out.stderr.strip().count("\n") == 0, out.stderr
    assert out.stderr.startswith("error: ")
    for needle in needles:
        assert needle in out.stderr, out.stderr


def test_bad_config_file_path(tmp_path):
    out = run_cli("train", "--env", "gridnav", "--config", str(tmp_path / "nope.yaml"), f"trainer.output_dir={tmp_path}")
    one_line_exit_2(out, "config file not found", "nope.yaml")


def test_yaml_syntax_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("trainer:\n  steps: [1, 2\n  lr: 0.1\n")
    out = run_cli("train", "--env", "gridnav", "--config", str(bad), f"trainer.output_dir={tmp_path}")
    one_line_exit_2(out, "is not valid YAML", "bad.yaml")


def test_unknown_plugin_name_lists_the_choices(tmp_path):
    out = run_cli("train", "--env", "gridnav", "paw.enabled=true", "paw.selector=nope", f"trainer.output_dir={tmp_path}")
    one_line_exit_2(out, "unknown selector 'nope'", "available: ", "entropy")
    out = run_cli("train", "--env", "gridnav", "algorithm.name=ppo2", f"trainer.output_dir={tmp_path}")
    one_line_exit_2(out, "unknown advantage_estimator 'ppo2'", "grpo")


def test_missing_webshop_data_folder(tmp_path):
    out = run_cli("train", "--env", "webshop", "model.name=tiny", f"env.options.data_dir={tmp_path}/missing",
                  f"trainer.output_dir={tmp_path}/run", "trainer.steps=1")
    one_line_exit_2(out, f"{tmp_path}/missing is not a folder", "data_dir")


def test_empty_webshop_data_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    out = run_cli("train", "--env", "webshop", "model.name=tiny", f"env.options.data_dir={tmp_path}/empty",
                  f"trainer.output_dir={tmp_path}/run", "trainer.steps=1")
    one_line_exit_2(out, "pawkit webshop generate")


def test_alfworld_data_folder_without_the_official_layout(tmp_path):
    if plugins.registry("env").get("alfworld").status() != "ready":
        pytest.skip("alfworld is not installed")
    (tmp_path / "empty").mkdir()
    out = run_cli("train", "--env", "alfworld", "model.name=tiny", f"env.options.data_dir={tmp_path}/empty",
                  f"trainer.output_dir={tmp_path}/run", "trainer.steps=1", "trainer.eval_before_after=false",
                  env={"ALFWORLD_DATA": str(tmp_path / "empty")})
    one_line_exit_2(out, "has no json_2.1.1/", "ALFWORLD_DATA")
