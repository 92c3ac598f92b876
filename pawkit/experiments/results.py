"""Sweep results I/O, shared by the runner and the report: ``results.jsonl`` lines and a run's
``metrics.jsonl`` curves. One line per finished run; the report reads the last line of each
(arm, seed).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS_FILE = "results.jsonl"


# Kept per run in results.jsonl so the report can redraw learning curves after the run folders
# are gone (results files get committed; run folders with checkpoints do not).
# The CMAE activity diagnostic (pawkit/train/paw.py): the share of selected WM target tokens with
# p > ρ (no gradient), ε < p ≤ ρ (where the clipped MAE acts) and p ≤ ε (effectively noise).
CMAE_KEYS = ("paw/cmae_above_rho", "paw/cmae_active", "paw/cmae_below_eps")
CURVE_KEYS = ("eval/success_rate", "rollout/success_rate", "eval/mean_return", "rollout/mean_return",
              "rollout/action_tokens", "paw/wm_token_accuracy", "paw/wm_target_prob", *CMAE_KEYS)

# Metric names before they were namespaced (docs/training.md, "Metrics"): metrics.jsonl files and
# stored curves written then (docs/results/*.results.jsonl) are read under the new names.
OLD_METRIC_NAMES = {
    **{k: f"rollout/{k}" for k in ("success_rate", "mean_return", "mean_steps", "invalid_action_rate", "episodes",
                                   "env_errors", "truncated_prompts", "advantage_mean", "action_tokens")},
    **{k: f"loss/{k}" for k in ("pg_loss", "clip_fraction", "entropy", "kl", "grad_norm", "skipped_update", "lr")},
    **{k: f"perf/{k}" for k in ("step_seconds", "rollout_seconds", "env_seconds", "generate_seconds", "generated_tokens",
                                "tokens_per_second", "peak_rss_mb", "peak_gpu_mb")},
}


def wm_accuracy(record: dict[str, Any]) -> tuple[float | None, str]:
    """The WM token accuracy a run record reports and where it was measured: ``(value, source)``,
    source ``"held-out"`` (``pawkit eval`` of the
    final checkpoint, or the trainer's own eval) or ``"train"`` (the last training step's
    ``paw/wm_token_accuracy``, used only when no held-out value exists); ``(None, "")`` when neither."""
    if record.get("wm_accuracy") is not None:
        return record["wm_accuracy"], "held-out"
    if record.get("train_wm_accuracy") is not None:
        return record["train_wm_accuracy"], "train"
    return None, ""


def renamed(metrics: dict[str, Any]) -> dict[str, Any]:
    """``metrics`` under today's names (old names renamed; a new name already there wins)."""
    out = {k: v for k, v in metrics.items() if k not in OLD_METRIC_NAMES}
    for old, new in OLD_METRIC_NAMES.items():
        if old in metrics:
            out.setdefault(new, metrics[old])
    return out


def read_results(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut by a kill: ignore, the run will be redone
                continue
    return records


def latest_records(records: list[dict[str, Any]]) -> dict[tuple[str, int], dict[str, Any]]:
    """The last record of each (arm, seed)."""
    return {(r["arm"], int(r["seed"])): r for r in records}


def read_metrics(path: Path) -> list[dict[str, float]]:
    """metrics.jsonl, one record per step (a resumed run re-logs steps after its checkpoint: last
    wins), under today's metric names."""
    by_step: dict[int, dict[str, float]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                m = json.loads(line)
            except json.JSONDecodeError:
                continue
            by_step[int(m["step"])] = renamed(m)
    return [by_step[s] for s in sorted(by_step)]


def metric_curve(metrics: list[dict[str, float]], key: str) -> list[list]:
    """[[step, value], ...] of ``key`` over the logged steps that have it."""
    return [[int(m["step"]), m[key]] for m in metrics if key in m]


def summarize_run(run_dir: Path) -> dict[str, Any]:
    """Final numbers of one finished run from its metrics.jsonl and eval_before_after.json."""
    metrics = read_metrics(run_dir / "metrics.jsonl")
    evals = [m for m in metrics if "eval/success_rate" in m]
    last = metrics[-1] if metrics else {}
    out: dict[str, Any] = {
        "steps": int(last.get("step", 0)),
        "final_eval_step": int(evals[-1]["step"]) if evals else None,
        "final_eval_success": evals[-1]["eval/success_rate"] if evals else None,
        "final_eval_return": evals[-1].get("eval/mean_return") if evals else None,
        "final_train_success": last.get("rollout/success_rate"),
        "final_train_return": last.get("rollout/mean_return"),
        "train_wm_accuracy": last.get("paw/wm_token_accuracy"),
        "curves": {key: metric_curve(metrics, key) for key in CURVE_KEYS},
    }
    final_eval = evals[-1] if evals else {}
    if evals and "eval/wm_token_accuracy" in evals[-1]:  # the trainer's own held-out eval measured it
        out["wm_accuracy"] = evals[-1]["eval/wm_token_accuracy"]
    before_after = run_dir / "eval_before_after.json"
    if before_after.exists():
        data = json.loads(before_after.read_text())
        after, before = data.get("after") or {}, data.get("before") or {}
        out["after_success"] = after.get("eval/success_rate")
        out["after_return"] = after.get("eval/mean_return")
        out["before_success"] = before.get("eval/success_rate")
        final_eval = after or final_eval
    if sampled := sampled_numbers(final_eval):  # trainer.eval_pass_k: pass@k of the eval the headline numbers come from
        out["final_sampled"] = sampled
    # The headline numbers: the after-training eval when there is one, else the last periodic eval,
    # else the last training batch.
    out["final_success"] = _first(out.get("after_success"), out["final_eval_success"], out["final_train_success"])
    out["final_return"] = _first(out.get("after_return"), out["final_eval_return"], out["final_train_return"])
    return out


SAMPLED_PREFIXES = ("pass@", "best_of_k_return@")  # pawkit/train/pass_at_k.py


def sampled_numbers(metrics: dict[str, Any]) -> dict[str, float]:
    """The sampled evaluation's estimates in one step's metrics (``eval/pass@4`` → ``pass@4``;
    intervals left out: the sweep's are over seeds), ordered by name then k."""
    found = {k.removeprefix("eval/"): v for k, v in metrics.items()
             if k.startswith("eval/") and k.removeprefix("eval/").startswith(SAMPLED_PREFIXES) and "_ci95_" not in k}
    return dict(sorted(found.items(), key=lambda kv: sampled_order(kv[0])))


def sampled_order(name: str) -> tuple[bool, int]:
    """Sort key of a sampled metric name: the pass@k ones first, then by k."""
    kind, k = name.split("@")
    return kind != "pass", int(k)


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def run_curve(record: dict[str, Any], key: str) -> list[tuple[int, float]]:
    """One run's (step, value) points: stored in its record, else read from its metrics.jsonl
    (records written before curves were stored); [] when neither is there. Curves stored under
    the metric names before namespacing (``success_rate``) are found by today's names."""
    stored = renamed(record.get("curves") or {}).get(key)
    if stored is None:
        path = Path(record["metrics"])
        stored = metric_curve(read_metrics(path), key) if path.exists() else []
    return [(int(step), value) for step, value in stored]
