"""`pawkit sweep` end to end on gridnav with the tiny model and tiny batches.

Every run is a training subprocess (~3 s of start-up each), so the sweeps here are as small as
they can be: 2 arms x 2 seeds of 2 steps, two at a time.
"""

import json
import statistics
import subprocess
import sys

import pytest
import yaml

from pawkit.cli import main
from pawkit.experiments.report import arm_wm_accuracy, fmt_mean_std, fmt_record_wm, fmt_wm, mean_std


def sweep_file(tmp_path, **changes):
    data = {
        "name": "mini",
        "output_dir": str(tmp_path / "out"),
        "env": "gridnav",
        "overrides": [
            "trainer.steps=2", "rollout.tasks_per_step=2", "rollout.group_size=2", "trainer.eval_every=1",
            "trainer.eval_episodes=4", "trainer.early_stop_success=null",
        ],
        "seeds": [0, 1],
        "parallel": 2,
        "wm_eval_episodes": 0,
        "arms": {"grpo": [], "grpo+paw": ["paw.enabled=true"]},
        **changes,
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def sweep(*args):
    return subprocess.run([sys.executable, "-m", "pawkit.cli", "sweep", *args], capture_output=True, text=True, timeout=600)


def test_sweep_runs_every_arm_and_seed_resumes_and_reports(tmp_path, capsys):
    path = sweep_file(tmp_path)
    out = sweep("--config", str(path))
    assert out.returncode == 0, out.stderr
    results = tmp_path / "out" / "results.jsonl"
    records = [json.loads(line) for line in results.read_text().splitlines()]
    assert len(records) == 4
    assert {(r["arm"], r["seed"]) for r in records} == {(a, s) for a in ("grpo", "grpo+paw") for s in (0, 1)}
    for r in records:
        assert r["status"] == "ok" and r["steps"] == 2
        assert 0 <= r["final_success"] <= 1 and r["final_eval_step"] == 2
        assert r["wall_seconds"] > 0
        assert (tmp_path / "out" / "runs" / r["arm"] / f"seed{r['seed']}" / "metrics.jsonl").exists()
        assert f"seed={r['seed']}" in r["overrides"]
        eval_curve, train_curve = r["curves"]["eval/success_rate"], r["curves"]["rollout/success_rate"]
        assert [s for s, _ in eval_curve] == [1, 2] and eval_curve[-1][1] == r["final_eval_success"]
        assert [s for s, _ in train_curve] == [1, 2] and train_curve[-1][1] == r["final_train_success"]
        assert r["curves"]["rollout/mean_return"][-1] == [2, r["final_train_return"]]
    paw = [r for r in records if r["arm"] == "grpo+paw"]
    assert all(r["train_wm_accuracy"] is not None for r in paw)

    capsys.readouterr()
    lines = results.read_text().splitlines()
    results.write_text("\n".join(lines[:-1]) + "\n")  # as if the sweep was killed during the last run
    assert main(["sweep", "--config", str(path), "--dry-run"]) == 0
    last = json.loads(lines[-1])
    assert f"{last['arm']} seed {last['seed']} (resume)" in capsys.readouterr().err  # its checkpoint exists
    results.write_text("\n".join(lines) + "\n")
    assert main(["sweep", "--config", str(path)]) == 0  # everything done: nothing runs, the report is rewritten
    assert "4 runs (4 already done)" in capsys.readouterr().err
    assert len(results.read_text().splitlines()) == 4

    report = (tmp_path / "out" / "report.md").read_text()
    for arm in ("grpo", "grpo+paw"):
        mine = [r for r in records if r["arm"] == arm]
        success = fmt_mean_std((statistics.fmean(r["final_success"] for r in mine),
                                statistics.stdev(r["final_success"] for r in mine), 2))
        ret = fmt_mean_std(mean_std(r["final_return"] for r in mine))
        assert f"| {arm} | {success} | {ret} |" in report, report
    assert "± " in report and "mini-curves.png" in report
    png = tmp_path / "out" / "mini-curves.png"
    assert png.exists() and png.read_bytes()[:4] == b"\x89PNG"


def test_wm_accuracy_says_where_it_was_measured():
    """A training-batch WM accuracy (wm_eval_episodes: 0) is printed as "(train)", never passed
    off as held-out, and never averaged with held-out values of the same arm."""
    held_out = {"wm_accuracy": 0.5, "train_wm_accuracy": 0.9}
    train_only = {"train_wm_accuracy": 0.25}
    assert fmt_record_wm(held_out) == "0.500"
    assert fmt_record_wm(train_only) == "0.250 (train)"
    assert fmt_record_wm({}) == "n/a"
    assert arm_wm_accuracy([held_out, train_only]) == ((0.5, 0.0, 1), "held-out")
    assert fmt_wm(arm_wm_accuracy([train_only, {"train_wm_accuracy": 0.75}])) == "0.500 ± 3.177 (train)"  # 95 % t half-width: 12.7062·0.3536/√2
    assert fmt_wm(arm_wm_accuracy([{}])) == "n/a"


def test_a_crashing_run_is_recorded_and_the_sweep_goes_on(tmp_path):
    # A valid config, but the env factory has no option 'walls': that training process crashes.
    arms = {"broken": ["env.options.walls=3"], "grpo": []}
    out = sweep("--config", str(sweep_file(tmp_path, seeds=[0], arms=arms, wm_eval_episodes=2)))
    assert out.returncode == 1
    broken, good = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert broken["status"] == "failed" and "walls" in broken["error"]
    assert good["status"] == "ok" and 0 <= good["wm_accuracy"] <= 1  # `pawkit eval` of the final checkpoint
    assert "Failed runs" in (tmp_path / "out" / "report.md").read_text()


def test_bad_sweep_file_exits_2_with_one_line(tmp_path, capsys):
    bad_files = (
        {"colour": "red"}, {"seeds": "zero"}, {"arms": {"a/b": []}}, {"arms": {}}, {"parallel": 0},
        {"arms": {"x": ["trainer.stepz=3"]}}, {"arms": {"x": ["paw.enabled=true", "paw.selector=entropic"]}},
        {"pairs": [["grpo+paw", "gigpo"]]}, {"pairs": [["grpo", "grpo"]]}, {"pairs": [["grpo"]]},
    )
    for changes in bad_files:
        assert main(["sweep", "--config", str(sweep_file(tmp_path, **changes)), "--dry-run"]) == 2, changes
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.strip().count("\n") == 0, err
    assert main(["sweep", "--config", str(tmp_path / "nope.yaml")]) == 2
    assert "not found" in capsys.readouterr().err


def test_dry_run_and_only(tmp_path, capsys):
    assert main(["sweep", "--config", str(sweep_file(tmp_path)), "--dry-run", "--only", "grpo+paw"]) == 0
    err = capsys.readouterr().err
    assert err.count("paw.enabled=true") == 2 and "[1/2] grpo+paw seed 0 (run)" in err
    assert not (tmp_path / "out" / "results.jsonl").exists()
    assert main(["sweep", "--config", str(sweep_file(tmp_path)), "--only", "ppo"]) == 2
    assert "unknown arm 'ppo'" in capsys.readouterr().err


def test_report_draws_curves_from_the_results_file_alone(tmp_path):
    # Committed results files outlive their run folders: curves stored in a record are enough;
    # an old record with neither stored curves nor a metrics.jsonl is named, not silently dropped.
    # Seed 1 and the return curves use the names from before metrics were namespaced
    # (``success_rate``, as in docs/results/*.results.jsonl): read under today's names.
    from pawkit.experiments.curves import curves
    from pawkit.experiments.report import write_report
    from pawkit.experiments.plan import load_sweep

    sweep_cfg = load_sweep(sweep_file(tmp_path, arms={"grpo": []}))
    out = tmp_path / "out"
    out.mkdir()
    gone = str(out / "runs" / "gone" / "metrics.jsonl")
    records = [
        {"arm": "grpo", "seed": 0, "status": "ok", "metrics": gone, "final_success": 1.0,
         "curves": {"eval/success_rate": [[1, 0.25], [2, 0.75]], "rollout/success_rate": [[1, 0.5], [2, 1.0]]}},
        {"arm": "grpo", "seed": 1, "status": "ok", "metrics": gone, "final_success": 0.5,
         "curves": {"eval/success_rate": [[1, 0.5]], "success_rate": [[1, 0.0], [2, 0.5]]}},
        {"arm": "grpo", "seed": 2, "status": "ok", "metrics": gone, "final_success": 0.0},
    ]
    (out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    by_key = {(r["arm"], r["seed"]): r for r in records}
    # seed 1 stopped at step 1: its last value carries on; seed 2 has no curve at all
    assert curves(sweep_cfg, by_key) == {"grpo": ([1, 2], [0.375, 0.625], [0.25, 0.5], [0.5, 0.75], 2)}
    report = write_report(sweep_cfg).read_text()
    assert "Not in the curves (no stored curve and no metrics.jsonl left): grpo seed 2." in report
    png = (out / "mini-curves.png").read_bytes()
    assert png[:4] == b"\x89PNG" and png_height(png) == 495  # one row of panels: success only

    # Records that stored return curves get a second row (mean return), for rare-success envs.
    records[0]["curves"] |= {"eval/mean_return": [[1, 0.1], [2, 0.4]], "mean_return": [[1, 0.2], [2, 0.3]]}
    (out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    write_report(sweep_cfg)
    assert png_height((out / "mini-curves.png").read_bytes()) == 990


def png_height(png: bytes) -> int:
    return int.from_bytes(png[20:24], "big")  # IHDR: width at 16-20, height at 20-24


def test_report_pairs_arms_by_seed(tmp_path):
    # grpo+paw − grpo per seed: return differences 0.2, 0.1, 0.3 (seed 3 of grpo failed: unpaired)
    from pawkit.experiments.plan import load_sweep
    from pawkit.experiments.report import write_report

    sweep_cfg = load_sweep(sweep_file(tmp_path, seeds=[0, 1, 2, 3], pairs=[["grpo+paw", "grpo"]]))
    out = tmp_path / "out"
    out.mkdir()
    rows = [("grpo", 0, 0.1, 0.0), ("grpo", 1, 0.2, 0.0), ("grpo", 2, 0.0, 0.0),
            ("grpo+paw", 0, 0.3, 0.0), ("grpo+paw", 1, 0.3, 0.5), ("grpo+paw", 2, 0.3, 0.0), ("grpo+paw", 3, 0.9, 1.0)]
    records = [{"arm": a, "seed": s, "status": "ok", "metrics": str(out / "gone.jsonl"), "final_return": r, "final_success": w,
                "curves": {"paw/cmae_active": [[1, 0.1], [2, 0.1 + s / 10]]} if a == "grpo+paw" else {}} for a, s, r, w in rows]
    for r in records:  # the sampled evaluation: pass@4 = 2 × the final return (grpo seed 2 did not log one)
        if (r["arm"], r["seed"]) != ("grpo", 2):
            r["final_sampled"] = {"pass@1": r["final_return"] / 2, "pass@4": 2 * r["final_return"]}
        if r["seed"] in (0, 1):  # training batches: seed 0 the same in both arms, seed 1 parts at step 2
            r["curves"]["rollout/mean_return"] = [[1, 0.1], [2, 0.3 if (r["arm"], r["seed"]) == ("grpo+paw", 1) else 0.1]]
        if r["seed"] == 0:  # seed 0 also kept its action-token counts: equal returns, other tokens at step 2
            r["curves"]["rollout/action_tokens"] = [[1, 10], [2, 11 if r["arm"] == "grpo+paw" else 10]]
    records.append({"arm": "grpo", "seed": 3, "status": "failed", "metrics": str(out / "gone.jsonl")})
    (out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    report = write_report(sweep_cfg).read_text()
    assert "| grpo+paw vs grpo | 2 of 4 | 0: 2, 1: 2 (return only) |" in report
    # per arm over the seeds that logged it: pass@4 of grpo 0.2, 0.4 (t(1) · 0.1 = 1.271), of grpo+paw 0.6, 0.6, 0.6, 1.8 (t(3) · 0.6/2 = 0.955)
    assert "| arm | pass@1 | pass@4 | seeds |" in report
    assert "| grpo | 0.075 ± 0.318 | 0.300 ± 1.271 | 2 |" in report
    assert "| grpo+paw | 0.225 ± 0.239 | 0.900 ± 0.955 | 4 |" in report
    # paired over seeds 0 and 1 only (seed 2 of grpo has no pass@4): differences 0.4, 0.2
    assert "| grpo+paw − grpo | pass@4 | +0.300 [-0.971, +1.571] | 0.5 | 2 |" in report
    # mean 0.2, sd 0.1, t(2) = 4.3027: half-width 0.2484; all three differences positive: p = 2/8
    assert "| grpo+paw − grpo | mean return | +0.200 [-0.048, +0.448] | 0.25 | 3 |" in report
    assert "| grpo+paw − grpo | success | +0.167 [-0.550, +0.884] | 1 | 3 |" in report
    # CMAE activity of the PaW arm: run means 0.10, 0.15, 0.20, 0.25 (seeds 0-3): 0.175 ± t(3)·0.0645/2
    assert "| grpo+paw | n/a | n/a | n/a | 0.175 ± 0.103 | n/a |" in report
    assert "| grpo | " not in report.split("## World model over training")[1].split("## Arms")[0]


def test_a_run_made_with_another_setup_is_refused_then_set_aside(tmp_path, capsys):
    """A finished run whose setup the sweep file no longer gives it is not silently reused: the
    sweep refuses before any run (exit 2, one line); --rerun-changed sets its folder aside."""
    from pawkit.config import load_config
    from pawkit.experiments.plan import load_sweep, plan_runs

    path = sweep_file(tmp_path)
    runs = plan_runs(load_sweep(str(path)), ["grpo"])
    old = load_config("gridnav", overrides=[*runs[0].overrides, "trainer.eval_episodes=8"]).model_dump(mode="json")
    runs[0].run_dir.mkdir(parents=True)
    (runs[0].run_dir / "run.json").write_text(json.dumps({"config": old}))
    records = tmp_path / "out" / "results.jsonl"
    records.write_text("".join(json.dumps({"arm": r.arm, "seed": r.seed, "overrides": r.overrides, "status": "ok",
                                           "metrics": str(r.run_dir / "metrics.jsonl")}) + "\n" for r in runs))
    assert main(["sweep", "--config", str(path), "--only", "grpo"]) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "grpo seed 0" in err and "trainer.eval_episodes 8 -> 4" in err, err
    assert "--rerun-changed" in err
    # the record alone (no folder left) is compared by its overrides
    runs[0].run_dir.joinpath("run.json").unlink()
    runs[0].run_dir.rmdir()
    lines = records.read_text().splitlines()
    lines[1] = lines[1].replace("seed=1", "seed=7")
    records.write_text("\n".join(lines) + "\n")
    assert main(["sweep", "--config", str(path), "--only", "grpo", "--dry-run"]) == 2
    assert "grpo seed 1" in capsys.readouterr().err
    assert main(["sweep", "--config", str(path), "--only", "grpo", "--dry-run", "--rerun-changed"]) == 0
    err = capsys.readouterr().err
    assert "grpo seed 0 (done, skipped)" in err and "grpo seed 1 (run)" in err
    # a real re-run sets the old folder aside, keeps it, and runs again
    runs[1].run_dir.mkdir(parents=True)
    (runs[1].run_dir / "run.json").write_text(json.dumps({"config": old | {"seed": 7}}))
    assert main(["sweep", "--config", str(path), "--only", "grpo", "--rerun-changed", "--report-only"]) == 0
    assert main(["sweep", "--config", str(path), "--only", "grpo", "--rerun-changed"]) == 0
    assert json.loads((runs[1].run_dir.with_name("seed1.changed-1") / "run.json").read_text())["config"]["seed"] == 7
    last = [json.loads(line) for line in records.read_text().splitlines()][-1]
    assert (last["arm"], last["seed"], last["status"]) == ("grpo", 1, "ok")
    assert json.loads((runs[1].run_dir / "run.json").read_text())["config"]["seed"] == 1
    assert last["config"]["seed"] == 1  # new records keep the resolved config


def test_which_earlier_runs_count_as_changed(tmp_path, monkeypatch, capsys):
    """Finished runs: any change that can move a number. Unfinished runs: only what --resume
    refuses (an eval cadence change resumes). Output-only keys never. A folder deleted after the
    refusal is compared by the record's stored config, and a run set aside stays not done."""
    from pawkit.config import load_config
    from pawkit.experiments.plan import changed_runs, load_sweep, plan_runs
    from pawkit.experiments.results import latest_records, read_results

    run = plan_runs(load_sweep(str(sweep_file(tmp_path))), ["grpo"])[0]

    def saved(*extra):
        return load_config("gridnav", overrides=[*run.overrides, *extra]).model_dump(mode="json")

    run.run_dir.mkdir(parents=True)

    def check(config, status):
        (run.run_dir / "run.json").write_text(json.dumps({"config": config}))
        return [what for _, what in changed_runs([run], {run.key: {"status": status, "overrides": run.overrides}})]

    assert check(saved("trainer.eval_every=2"), "ok") == ["trainer.eval_every 2 -> 1"]
    assert check(saved("trainer.eval_every=2"), "stopped") == []  # resumed with the new cadence
    assert check(saved("trainer.lr=0.5"), "stopped") == ["trainer.lr 0.5 -> 0.003"]
    assert check(saved("trainer.save_every=1", "rollout.num_workers=1", "trainer.report_to=[jsonl,tensorboard]"), "ok") == []
    # the folder is gone: the record's own config still tells an edited config file
    (run.run_dir / "run.json").unlink()
    run.run_dir.rmdir()
    record = {"status": "ok", "overrides": run.overrides, "config": saved("algorithm.kl_coef=0.5")}
    assert [w for _, w in changed_runs([run], {run.key: record})] == ["algorithm.kl_coef 0.5 -> 0.0"]
    # set aside by --rerun-changed, then cut short: the marker line keeps the old ok from counting
    out = tmp_path / "out"
    (out / "results.jsonl").write_text(json.dumps({"arm": "grpo", "seed": 0, **record}) + "\n")
    import pawkit.experiments.run as run_module

    class CutShort(Exception):
        pass

    def cut_short(sweep, run):
        raise CutShort  # the new run dies before it records anything (a kill -9)

    monkeypatch.setattr(run_module, "execute", cut_short)
    with pytest.raises(CutShort):
        run_module.run_sweep(load_sweep(str(sweep_file(tmp_path, seeds=[0]))), only=["grpo"], rerun_changed=True)
    latest = latest_records(read_results(out / "results.jsonl"))[("grpo", 0)]
    assert latest["status"] == "changed" and "algorithm.kl_coef" in latest["error"]
    assert main(["sweep", "--config", str(sweep_file(tmp_path, seeds=[0])), "--only", "grpo", "--dry-run"]) == 0
    assert "grpo seed 0 (run)" in capsys.readouterr().err  # not "(done, skipped)" with the old setup's numbers


def test_a_panel_evaluated_once_puts_the_arms_along_x(tmp_path):
    # Evaluated after training only (eval_every = steps): one dot per arm at x = its index in the
    # sweep, the arm names as tick labels; arms with curves keep a step axis.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pawkit.experiments.plan import load_sweep
    from pawkit.experiments.curves import draw_panel

    sweep_cfg = load_sweep(sweep_file(tmp_path, arms={"a-grpo": [], "b-grpo+paw": ["paw.enabled=true"], "c-gigpo": []}))
    once = {"a-grpo": ([6], [0.5], [0.4], [0.6], 2), "c-gigpo": ([6], [0.3], [0.3], [0.3], 1)}
    fig, (ax, ax2) = plt.subplots(1, 2)
    draw_panel(ax, sweep_cfg, once, {"a-grpo": 2, "b-grpo+paw": 0, "c-gigpo": 3}, plt.get_cmap("tab10"))
    assert list(ax.get_xticks()) == [0, 2]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a-grpo", "c-gigpo"]
    assert ax.get_xlabel() == "arm (after training step 6)"
    dot, caps, (bar,) = ax.containers[0].lines  # yaml.safe_dump sorts the arms: a-, b-, c-
    assert list(dot.get_xydata()[0]) == [0.0, 0.5] and bar.get_segments()[0].tolist() == [[0.0, 0.4], [0.0, 0.6]]
    assert ax.get_legend_handles_labels()[1] == ["a-grpo", "c-gigpo (1 of 3 seeds)"]

    draw_panel(ax2, sweep_cfg, {"a-grpo": ([1, 2], [0.1, 0.2], [0.0, 0.1], [0.2, 0.3], 2), "c-gigpo": ([6], [0.3], [0.3], [0.3], 3)},
               {"a-grpo": 2, "b-grpo+paw": 0, "c-gigpo": 3}, plt.get_cmap("tab10"))
    assert ax2.get_xlabel() == "training step"
    assert list(ax2.containers[0].lines[0].get_xydata()[0]) == [6.0, 0.3]  # the lone point sits at its step
    plt.close(fig)
