"""The CLI through a subprocess, as a user runs it."""

import json
import subprocess
import sys


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pawkit.cli", *args], capture_output=True, text=True, timeout=300)


def test_version():
    out = run("version")
    assert out.returncode == 0 and out.stdout.startswith("pawkit ")


def test_envs_json_lists_textarena_games_builtins_and_the_example():
    out = run("envs", "--json")
    assert out.returncode == 0, out.stderr
    envs = {e["name"]: e for e in json.loads(out.stdout)}
    assert sum(name.startswith("textarena/") for name in envs) >= 7
    assert envs["gridnav"]["status"] == "ready"
    assert envs["example/counter"]["plugin"] == "example"  # its entry-point name


def test_bad_override_value_exits_2_with_one_line():
    out = run("config", "show", "--env", "gridnav", "trainer.steps=abc")
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0
    assert "trainer.steps" in out.stderr and "Traceback" not in out.stderr


def test_unknown_key_exits_2_with_one_line():
    out = run("config", "show", "--env", "gridnav", "trainer.stepz=3")
    assert out.returncode == 2
    assert out.stderr.strip() == "error: unknown config key 'trainer.stepz'"


def test_unknown_env_lists_choices():
    out = run("play", "--env", "nope", "--episodes", "1")
    assert out.returncode == 2
    assert out.stderr.startswith("error: unknown env 'nope'") and "gridnav" in out.stderr
    assert out.stderr.strip().count("\n") == 0


def test_config_show_resolves_overrides():
    out = run("config", "show", "--env", "gridnav", "paw.enabled=true", "seed=5")
    assert out.returncode == 0
    assert "enabled: true" in out.stdout and "seed: 5" in out.stdout


def test_play_random_json_summary():
    out = run("play", "--env", "textarena/TowerOfHanoi-v0", "--policy", "random", "--episodes", "2", "--json")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["env"] == "textarena/TowerOfHanoi-v0" and summary["episodes"] == 2
    assert {"success_rate", "mean_return", "mean_steps", "invalid_action_rate"} <= set(summary)


def test_play_expert_solves_gridnav_and_example():
    for env in ("gridnav", "example/counter"):
        out = run("play", "--env", env, "--policy", "expert", "--episodes", "5", "--json")
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["success_rate"] == 1.0


def test_plugins_json_has_every_hook():
    out = run("plugins", "--json")
    assert out.returncode == 0
    data = json.loads(out.stdout)
    assert set(data) >= {"env", "selector", "wm_loss", "balancer", "advantage_estimator", "broken"}


def test_human_play_reads_commands_from_stdin():
    proc = subprocess.run(
        [sys.executable, "-m", "pawkit.cli", "play", "--env", "example/counter", "--policy", "human", "--episodes", "1"],
        input="\n".join(["add 2"] * 20) + "\n", capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "episode 0: return" in proc.stdout


def test_train_then_eval_the_checkpoint_on_a_textarena_game(tmp_path):
    out = run(
        "train", "--env", "textarena/GuessTheNumber-v0", "model.name=tiny", "trainer.steps=3",
        f"trainer.output_dir={tmp_path}", "rollout.max_new_tokens=32", "--quiet",
    )
    assert out.returncode == 0, out.stderr[-2000:]
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1.0, 2.0, 3.0]
    model = tmp_path / "checkpoints" / "step-000003" / "model"
    assert (model / "config.json").exists()
    ev = run("eval", "--env", "textarena/GuessTheNumber-v0", "--model", str(model), "--episodes", "2", "--json",
             "rollout.max_new_tokens=32")
    assert ev.returncode == 0, ev.stderr[-2000:]
    summary = json.loads(ev.stdout)
    assert summary["episodes"] == 2 and {"success_rate", "mean_return", "invalid_action_rate", "mean_steps"} <= set(summary)


def test_train_with_a_bad_model_path_is_one_line(tmp_path):
    out = run("train", "--env", "gridnav", f"model.name={tmp_path}/missing", f"trainer.output_dir={tmp_path}")
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "does not exist" in out.stderr


def test_overrides_may_follow_an_option_and_strays_are_still_rejected():
    out = run("config", "show", "--env", "gridnav", "seed=5", "--config", "configs/gridnav.yaml", "paw.enabled=true")
    assert out.returncode == 0, out.stderr
    assert "enabled: true" in out.stdout and "seed: 5" in out.stdout
    out = run("config", "show", "--env", "gridnav", "seed=5", "--nope")
    assert out.returncode == 2 and "unrecognized arguments: --nope" in out.stderr
    out = run("version", "seed=5")  # a command without overrides keeps argparse's error
    assert out.returncode == 2 and "unrecognized arguments: seed=5" in out.stderr


def test_output_into_a_closed_pipe_is_not_an_error():
    """`pawkit config show | head -1`: the reader leaves early; no traceback, exit 0 (a traceback before)."""
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "pawkit.cli", "config", "show", "--env", "webshop", "--explain"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # the reader is gone before the first write (what `head` does once satisfied)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and b"Traceback" not in err and b"BrokenPipe" not in err
