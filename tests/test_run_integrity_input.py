"""Issue #18, kinds 5–9: input that used to crash late, mean something else, or report a stopped
run as finished. Every user mistake is one ``error:`` line naming the key or path, exit 2,
before a model loads; an env that breaks its contract costs one episode, not the run.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import get_args

import pytest
import yaml

from pawkit import plugins
from pawkit.cli import main
from pawkit.config import ConfigError, load_config, read_yaml
from pawkit.config_reference import leaf_fields
from pawkit.hookspecs import hookimpl
from pawkit.protocol import Env, Observation, StepResult, Task


class BrokenEnv(Env):
    """Each task id names how its episode breaks the Env contract (``good`` keeps it)."""

    name = "brokenenv"
    splits = ("train", "empty")
    max_steps = 3

    def tasks(self, split="train"):
        super().tasks(split)
        return [] if split == "empty" else [Task(id="good", split=split)]

    def reset(self, task=None, seed=None):
        self.mode = task.id if task else "good"
        return {
            "reset-str": "an observation as a bare str",
            "reset-none": None,
            "reset-tuple": (Observation(text="start"), {}),
            "reset-surrogate": Observation(text="lone \ud800 surrogate"),
        }.get(self.mode, Observation(text="start", admissible_actions=["go"]))

    def step(self, command):
        obs = Observation(text="next", admissible_actions=["go"])
        return {
            "step-str": "ok",
            "step-none": None,
            "step-tuple": (obs, 1.0, True, {}),
            "step-nan": StepResult(observation=obs, reward=math.nan),
            "step-inf": StepResult(observation=obs, reward=-math.inf),
            "step-surrogate": StepResult(observation=Observation(text="x\udfff", admissible_actions=["go"])),
            "actions-surrogate": StepResult(observation=Observation(text="y", admissible_actions=["g\ud800o"])),
        }.get(self.mode, StepResult(observation=obs, reward=1.0, done=True, success=True))

    def format_observation(self, observation):  # an adapter that adds one itself: replaced, never tokenized
        return observation.text + " \udc80"


@hookimpl
def register_envs(register):
    register("brokenenv", BrokenEnv, description="test-only env that breaks its contract")


@pytest.fixture(scope="module", autouse=True)
def _plugin():
    name = plugins.register_plugin(sys.modules[__name__], name="integrity-plugin")
    yield
    plugins.unregister_plugin(name)


def one_line_exit_2(rc: int, capsys, *needles: str) -> str:
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.startswith("error: ") and err.strip().count("\n") == 0, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err
    return err


def train_args(tmp_path, *extra):
    return ["train", "--env", "gridnav", "--quiet", f"trainer.output_dir={tmp_path / 'run'}", "trainer.steps=1",
            "rollout.tasks_per_step=1", "rollout.group_size=2", *extra]


@pytest.fixture
def no_model_load(monkeypatch):
    """Fail loudly if a check under test let the run get as far as loading a model."""
    import pawkit.train.evaluate
    import pawkit.train.trainer

    def refuse(cfg):
        raise AssertionError("the model was loaded before the input was checked")

    monkeypatch.setattr(pawkit.train.trainer, "load_model", refuse)
    monkeypatch.setattr(pawkit.train.evaluate, "load_model", refuse)


# ------------------------------------------------------------- kind 5: non-finite float keys


FLOAT_KEYS = [key for key, _, info in leaf_fields() if float in (info.annotation, *get_args(info.annotation))]


def test_every_float_key_refuses_inf_and_nan_from_overrides_and_files(tmp_path, capsys):
    assert {"rollout.temperature", "rollout.step_timeout", "trainer.early_stop_success", "paw.lambda0"} <= set(FLOAT_KEYS)
    for key in FLOAT_KEYS:
        for raw in (".inf", "-.inf", ".nan"):
            with pytest.raises(ConfigError, match=f"'{key}'.*finite"):
                load_config("gridnav", overrides=[f"{key}={raw}"])
    section, leaf = "algorithm", "step_advantage_weight"
    path = tmp_path / "inf.yaml"
    path.write_text(f"{section}:\n  {leaf}: .inf\n")
    with pytest.raises(ConfigError, match=f"{section}.{leaf}"):
        load_config("gridnav", config_file=path)
    for example in ("rollout.temperature=.inf", "rollout.invalid_penalty=.nan", "paw.lambda0=.nan",
                    "algorithm.step_advantage_weight=.inf", "trainer.lr=.inf"):
        one_line_exit_2(main(["config", "show", "--env", "gridnav", example]), capsys, example.split("=")[0], "finite")


# --------------------------------------------- kind 6: config that silently means something else


def test_a_key_given_twice_is_refused_with_both_line_numbers(tmp_path, capsys):
    twice = tmp_path / "twice.yaml"
    twice.write_text("trainer:\n  steps: 3\nrollout:\n  group_size: 2\ntrainer:\n  lr: 0.001\n")
    one_line_exit_2(main(["config", "show", "--env", "gridnav", "--config", str(twice)]), capsys,
                    "key 'trainer' appears twice (lines 1 and 5)", str(twice))
    nested = tmp_path / "nested.yaml"
    nested.write_text("paw:\n  rho: 0.1\n  enabled: true\n  rho: 0.3\n")
    with pytest.raises(ConfigError, match=r"'paw\.rho' appears twice \(lines 2 and 4\)"):
        read_yaml(nested)
    anchors = tmp_path / "anchors.yaml"  # YAML merge keys may repeat keys on purpose
    anchors.write_text("base: &b {steps: 1}\ntrainer:\n  <<: *b\n  lr: 0.1\n")
    assert read_yaml(anchors)["trainer"] == {"steps": 1, "lr": 0.1}
    with pytest.raises(ConfigError, match="override 'env.options=.*appears twice"):
        load_config("gridnav", overrides=["env.options={size: 4, size: 5}"])


def test_seed_range_is_what_torch_random_and_numpy_accept(capsys):
    from pawkit.train.state import seed_everything

    for bad in ("-1", str(2**32)):
        one_line_exit_2(main(["config", "show", "--env", "gridnav", f"seed={bad}"]), capsys, "'seed'")
    top = load_config("gridnav", overrides=[f"seed={2**32 - 1}"])
    seed_everything(top.seed)  # the largest accepted seed really seeds every generator


def test_splits_and_counts_are_checked_before_the_model_loads(tmp_path, capsys, no_model_load):
    one_line_exit_2(main(train_args(tmp_path, "env.eval_split=validation")), capsys,
                    "env.eval_split", "unknown split 'validation'")
    one_line_exit_2(main(train_args(tmp_path, "env.train_split=nope")), capsys, "env.train_split")
    brokenenv = ["--env", "brokenenv", "env.eval_split=empty", "trainer.eval_every=1"]
    one_line_exit_2(main([*train_args(tmp_path)[:1], *brokenenv, f"trainer.output_dir={tmp_path}/b", "--quiet"]), capsys,
                    "env.eval_split", "has no tasks")
    one_line_exit_2(main(["eval", "--env", "gridnav", "--model", "tiny", "--episodes", "0"]), capsys, "--episodes")
    one_line_exit_2(main(["play", "--env", "gridnav", "--policy", "random", "--episodes", "0"]), capsys, "--episodes")
    one_line_exit_2(main(["eval", "--env", "gridnav", "--model", "tiny", "--split", "nope"]), capsys, "unknown split 'nope'")
    one_line_exit_2(main(["eval", "--env", "brokenenv", "--model", "tiny", "--split", "empty"]), capsys, "has no tasks")


# ------------------------------------------------------ kind 7: envs that break their contract


BROKEN = ["reset-str", "reset-none", "reset-tuple", "reset-surrogate", "step-str", "step-none", "step-tuple",
          "step-nan", "step-inf", "step-surrogate", "actions-surrogate"]


@pytest.fixture(scope="module")
def generator():
    import torch

    from pawkit.rollout.generate import Generator
    from pawkit.train.models import load_model

    cfg = load_config("gridnav", overrides=["rollout.max_new_tokens=4", "rollout.prompt_style=compact"])
    torch.manual_seed(0)
    model, tokenizer = load_model(cfg.model)
    return cfg, Generator(model, tokenizer, cfg.rollout)


@pytest.mark.parametrize("workers", [0, 1])
def test_contract_breaking_results_drop_that_episode_with_one_line(generator, workers):
    from pawkit.rollout.envpool import make_env_pool
    from pawkit.rollout.run import run_rollout

    cfg, gen = generator
    env = BrokenEnv()
    tasks = [Task(id=mode) for mode in ["good", *BROKEN]]
    with make_env_pool("brokenenv", {}, len(tasks), num_workers=workers) as pool:
        batch = run_rollout(env, pool, gen, tasks, 1, cfg.rollout, 1.0)
    by_task = {e.task_id: e for e in batch.episodes}
    assert by_task["good"].end_reason == "done" and by_task["good"].return_ == 1.0
    assert [t for t in BROKEN if by_task[t].end_reason != "env_error"] == []
    assert batch.env_errors == len(BROKEN) == len(batch.env_error_messages)
    for message in batch.env_error_messages:
        assert "\n" not in message and "EnvContractError: env 'brokenenv': " in message, message
        method = "reset" if message.startswith("reset-") else "step"
        assert f"'brokenenv': {method} " in message, message
    text = "\n".join(batch.env_error_messages)
    assert "returned str" in text and "returned NoneType" in text and "gym-style tuple" in text
    assert "non-finite reward nan" in text and "non-finite reward -inf" in text
    assert "lone surrogate '\\ud800' in observation.text" in text and "observation.admissible_actions" in text
    assert len(batch.samples) == len(by_task["good"].transitions) == 1  # only the good episode is trained on
    decoded = [gen.tokenizer.decode(s.prompt_ids) for s in batch.samples]
    assert all("\ufffd" in d and not any("\ud800" <= c <= "\udfff" for c in d) for d in decoded)
    assert "\ufffd" in batch.samples[0].next_observation_text


# ------------------------------------------------- kind 8: tracebacks where one line is promised


def test_output_dir_that_is_a_file_or_read_only(tmp_path, capsys, no_model_load):
    (tmp_path / "file").write_text("x")
    one_line_exit_2(main([*train_args(tmp_path), f"trainer.output_dir={tmp_path / 'file'}"]), capsys,
                    "trainer.output_dir", "is a file")
    one_line_exit_2(main([*train_args(tmp_path), f"trainer.output_dir={tmp_path / 'file' / 'run'}"]), capsys,
                    "trainer.output_dir", "a file, not a folder")
    one_line_exit_2(main([*train_args(tmp_path), "trainer.output_dir=/proc/self/pawkit-run"]), capsys,
                    "trainer.output_dir=/proc/self/pawkit-run is not writable")


def test_config_path_that_is_a_folder_or_not_utf8(tmp_path, capsys):
    for command in (["config", "show"], ["train"], ["eval", "--model", "tiny"]):
        one_line_exit_2(main([*command, "--env", "gridnav", "--config", str(tmp_path)]), capsys, str(tmp_path), "is a folder")
        latin1 = tmp_path / "latin1.yaml"
        latin1.write_bytes("trainer:\n  output_dir: runs/caf\xe9\n".encode("latin-1"))
        one_line_exit_2(main([*command, "--env", "gridnav", "--config", str(latin1)]), capsys, str(latin1), "not UTF-8")


def test_bad_env_options_in_train_and_eval(tmp_path, capsys, no_model_load):
    one_line_exit_2(main(train_args(tmp_path, "env.options.walls=3")), capsys, "env.options", "gridnav", "walls")
    one_line_exit_2(main(["eval", "--env", "gridnav", "--model", "tiny", "env.options.walls=3"]), capsys,
                    "env.options", "walls")


def test_unwritable_pawkit_cache(tmp_path, capsys, monkeypatch, no_model_load):
    (tmp_path / "cache-file").write_text("x")
    monkeypatch.setenv("PAWKIT_CACHE", str(tmp_path / "cache-file"))
    one_line_exit_2(main(train_args(tmp_path, "model.name=smollm2-135m")), capsys, "PAWKIT_CACHE", "cache-file")
    monkeypatch.setenv("PAWKIT_CACHE", "/proc/self/pawkit-cache")
    one_line_exit_2(main(train_args(tmp_path, "model.name=smollm2-135m")), capsys, "PAWKIT_CACHE", "not writable")


# ------------------------------------------- kind 9: a stopped run is not reported as finished


def test_a_run_stopped_before_its_steps_exits_3_and_early_stop_exits_0(tmp_path, capsys, monkeypatch):
    from pawkit.train import trainer

    quick = ["model.name=tiny", "trainer.eval_every=0", "trainer.eval_before_after=false",
             "trainer.dump_trajectories_every=0", "rollout.max_new_tokens=8"]
    config = load_config("gridnav", overrides=[*train_args(tmp_path)[4:], *quick, "trainer.steps=3",
                                               "trainer.early_stop_success=null"])
    history = trainer.train(config, show_progress=False, on_step=lambda t, m: True)  # as a SIGTERM after step 1
    assert len(history) == 1 and history.interrupted
    last = load_config("gridnav", overrides=[*train_args(tmp_path)[4:], *quick, "trainer.early_stop_success=null",
                                             f"trainer.output_dir={tmp_path}/last"])
    assert not trainer.train(last, show_progress=False, on_step=lambda t, m: True).interrupted  # signal at the last step
    early = load_config("gridnav", overrides=[*train_args(tmp_path)[4:], *quick, "trainer.steps=3",
                                              "trainer.early_stop_success=0.0", f"trainer.output_dir={tmp_path}/early"])
    assert not trainer.train(early, show_progress=False).interrupted  # early stop is a finish

    real_train = trainer.train
    monkeypatch.setattr(trainer, "train", lambda cfg, **kw: real_train(cfg, **kw, on_step=lambda t, m: True))
    rc = main([*train_args(tmp_path), *quick, "trainer.steps=5", f"trainer.output_dir={tmp_path}/cli"])
    err = capsys.readouterr().err
    assert rc == 3, err
    assert "stopped at step 1 of 5 by a signal" in err and "--resume" in err


def _sweep_file(tmp_path: Path) -> Path:
    data = {"name": "mini", "output_dir": str(tmp_path / "out"), "env": "gridnav", "seeds": [0], "parallel": 1,
            "wm_eval_episodes": 0, "overrides": ["trainer.steps=8"], "arms": {"grpo": []}}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_sweep_records_a_signalled_child_as_stopped_resumes_it_and_the_report_marks_it(tmp_path, capsys, monkeypatch):
    import json

    from pawkit.experiments import run as sweep_run
    from pawkit.experiments.plan import load_sweep
    from pawkit.experiments.report import write_report

    path = _sweep_file(tmp_path)
    calls = []

    def child(sweep, run, resume):  # a `pawkit train` that checkpointed 5 of 8 steps, then got SIGTERM
        calls.append(resume)
        run.run_dir.mkdir(parents=True, exist_ok=True)
        (run.run_dir / "metrics.jsonl").write_text("".join(json.dumps({"step": s}) + "\n" for s in range(1, 6)))
        return [sys.executable, "-c", "import sys; print('stopped at step 5 of 8', file=sys.stderr); sys.exit(3)"]

    monkeypatch.setattr(sweep_run, "train_command", child)
    sweep = load_sweep(path)
    assert sweep_run.run_sweep(sweep) == 1  # not finished: counted like a failure in the exit status
    record = json.loads((tmp_path / "out" / "results.jsonl").read_text().splitlines()[-1])
    assert record["status"] == "stopped" and record["steps"] == 5 and record["target_steps"] == 8
    assert "STOPPED at step 5 of 8" in capsys.readouterr().err
    sweep_run.run_sweep(sweep)
    assert len(calls) == 2  # the re-run did not skip it
    report = write_report(sweep).read_text()
    assert "| grpo | n/a | n/a | n/a | n/a | n/a | 0 (1 unfinished) |" in report, report
    assert "unfinished (stopped at step 5 of 8)" in report and "## Unfinished runs" in report
    assert "## Failed runs" not in report
