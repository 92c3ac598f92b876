"""The report of a sweep: ``report.md`` (mean ± 95 % t half-width over seeds per arm, the
``pairs`` compared seed by seed, the world model over training) and a learning-curve PNG
(pawkit/experiments/curves.py).

Reads ``<output_dir>/results.jsonl`` (the last record of each arm and seed) and each run's
``metrics.jsonl``. Called by ``pawkit sweep`` after the runs and by ``pawkit sweep --report-only``.

Columns: final success (the after-training eval when ``trainer.eval_before_after`` is on, else
the last periodic ``eval/success_rate``), its mean return, WM token accuracy (argmax == target on
the next-observation tokens of held-out episodes played by the final checkpoint — ``pawkit eval``
— for every arm, PaW or not; with ``wm_eval_episodes: 0`` the last training step's
``paw/wm_token_accuracy`` instead, marked "(train)" because it is not held-out), wall time of the training
process, and the number of seeds that finished. The ± is t_{0.975, n−1}·s/√n with s the sample
standard deviation (n − 1).
Runs stopped by a signal before ``trainer.steps`` (status ``stopped``) are never averaged with the
finished ones: they are counted as unfinished in the seeds column and listed under "Unfinished runs".
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any, Iterable

from pawkit.experiments.curves import plot_curves
from pawkit.experiments.plan import SweepConfig
from pawkit.experiments.results import (
    CMAE_KEYS,
    RESULTS_FILE,
    latest_records,
    read_results,
    run_curve,
    sampled_order,
    wm_accuracy,
)
from pawkit.train.intervals import paired_difference, t_975


# Statuses of runs that are neither a result nor a failure: stopped by a signal (resumed by the next
# sweep), or set aside by --rerun-changed and not yet run again.
UNFINISHED = ("stopped", "changed")


def mean_std(values: Iterable[float | None]) -> tuple[float, float, int] | None:
    """(mean, sample std, n) of the non-missing values; std is 0.0 for a single value."""
    xs = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not xs:
        return None
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0), len(xs)


def fmt_mean_std(stats: tuple[float, float, int] | None, digits: int = 3) -> str:
    """``mean ± h``: h is the half-width of the 95 % Student-t interval over the n seeds,
    t_{0.975, n−1}·std/√n (pawkit/train/intervals.py); the mean alone for one seed."""
    if stats is None:
        return "n/a"
    mean, std, n = stats
    return f"{mean:.{digits}f}" if n == 1 else f"{mean:.{digits}f} ± {t_975(n - 1) * std / math.sqrt(n):.{digits}f}"


def activity_rows(sweep: SweepConfig, records: dict[tuple[str, int], dict[str, Any]]) -> list[str]:
    """Per PaW arm: the training-batch WM token accuracy, target probability and CMAE activity
    shares, each averaged over the run's steps, then mean ± 95 % half-width over seeds."""
    keys = ("paw/wm_token_accuracy", "paw/wm_target_prob", *CMAE_KEYS)
    lines = []
    for arm in sweep.arms:
        runs = [r for (a, _), r in sorted(records.items()) if a == arm and r.get("status") == "ok"]
        per_key = [mean_std(_run_mean(r, key) for r in runs) for key in keys]
        if any(stats is not None for stats in per_key):
            lines.append(f"| {arm} | " + " | ".join(fmt_mean_std(stats) for stats in per_key) + " |")
    return lines


def _run_mean(record: dict[str, Any], key: str) -> float | None:
    points = [value for _, value in run_curve(record, key)]
    return statistics.fmean(points) if points else None


def sampled_rows(sweep: SweepConfig, records: dict[tuple[str, int], dict[str, Any]]) -> tuple[list[str], list[str]]:
    """The sampled evaluation (``trainer.eval_pass_k``): its metric names and one row per arm
    that logged them, mean ± 95 % half-width over seeds of the final pass@k / best-of-k return."""
    keys: list[str] = []
    for r in records.values():
        keys += [k for k in r.get("final_sampled") or {} if k not in keys]
    keys.sort(key=sampled_order)
    lines = []
    for arm in sweep.arms:
        runs = [r for (a, _), r in sorted(records.items()) if a == arm and r.get("status") == "ok" and r.get("final_sampled")]
        if runs:
            lines.append(f"| {arm} | " + " | ".join(fmt_mean_std(mean_std(r["final_sampled"].get(k) for r in runs)) for k in keys)
                         + f" | {len(runs)} |")
    return keys, lines


def both_finished(sweep: SweepConfig, records: dict[tuple[str, int], dict[str, Any]], *arms: str) -> list[int]:
    """The seeds every one of ``arms`` finished (status ok): the pairs of a paired comparison."""
    return [s for s in sweep.seeds if all(records.get((a, s), {}).get("status") == "ok" for a in arms)]


def paired_rows(sweep: SweepConfig, records: dict[tuple[str, int], dict[str, Any]]) -> list[str]:
    """The ``pairs`` section: treatment − base per seed both finished, for final return and success
    (and the sampled evaluation's numbers, when logged): the mean difference, its 95 % t interval and the exact sign-flip p (paired by seed)."""
    lines = []
    sampled_keys, _ = sampled_rows(sweep, records)

    def value(record: dict[str, Any], key: str) -> Any:
        return (record.get("final_sampled") or {}).get(key) if key in sampled_keys else record.get(key)

    for treatment, base in sweep.pairs:
        for key, label in (("final_return", "mean return"), ("final_success", "success"), *((k, k) for k in sampled_keys)):
            pairs = [(value(records[(base, s)], key), value(records[(treatment, s)], key)) for s in both_finished(sweep, records, treatment, base)]
            pairs = [(b, t) for b, t in pairs if b is not None and t is not None]
            if not pairs:
                if key == "final_return":  # one line for a pair with no seed finished in both arms
                    lines.append(f"| {treatment} − {base} | (no seed finished in both arms yet) | n/a | n/a | 0 |")
                continue
            diff = paired_difference([b for b, _ in pairs], [t for _, t in pairs])
            spread = f"[{diff.interval.low:+.3f}, {diff.interval.high:+.3f}]" if len(pairs) > 1 else "(one seed: no interval)"
            lines.append(f"| {treatment} − {base} | {label} | {diff.interval.estimate:+.3f} {spread} | {diff.p_value:.3g} | {len(pairs)} |")
    return lines


SAMPLING_KEYS = ("rollout/mean_return", "rollout/action_tokens")  # what a training batch is compared by


def divergence_rows(sweep: SweepConfig, records: dict[tuple[str, int], dict[str, Any]]) -> list[str]:
    """Per pair: did the treatment change what was sampled? For each seed both arms finished, the
    training steps whose batch is the base's by its mean return and its generated action-token
    count (``SAMPLING_KEYS``; the return alone where an older record kept no token curve), and
    the first step where it is not. Equal on every step of a seed means (short of a tie in both)
    the same sampled episodes: the treatment did not change one sampled action. With a sparse
    reward returns are mostly 0 and the token count is what tells batches apart."""
    lines = []
    for treatment, base in sweep.pairs:
        equal = total = 0
        first = []
        for s in both_finished(sweep, records, treatment, base):
            curves = [[dict(run_curve(records[(arm, s)], key)) for key in SAMPLING_KEYS] for arm in (treatment, base)]
            keys = [i for i in range(len(SAMPLING_KEYS)) if curves[0][i] and curves[1][i]]
            steps = sorted(set.intersection(*(set(c[i]) for c in curves for i in keys))) if keys else []
            if not steps:
                continue
            differ = [st for st in steps if any(curves[0][i][st] != curves[1][i][st] for i in keys)]
            equal, total = equal + len(steps) - len(differ), total + len(steps)
            first.append(f"{s}: {differ[0] if differ else 'never'}" + ("" if len(keys) == len(SAMPLING_KEYS) else " (return only)"))
        if total:
            lines.append(f"| {treatment} vs {base} | {equal} of {total} | {', '.join(first)} |")
    return lines


def arm_rows(sweep: SweepConfig, records: dict[tuple[str, int], dict[str, Any]]) -> list[dict[str, Any]]:
    arms = list(sweep.arms) + sorted({a for a, _ in records} - set(sweep.arms))
    rows = []
    for arm in arms:
        runs = [r for (a, _), r in sorted(records.items()) if a == arm]
        if not runs:
            continue
        ok = [r for r in runs if r.get("status") == "ok"]
        rows.append({
            "arm": arm,
            "success": mean_std(r.get("final_success") for r in ok),
            "return": mean_std(r.get("final_return") for r in ok),
            "wm_accuracy": arm_wm_accuracy(ok),
            "wall": mean_std(r.get("wall_seconds") for r in ok),
            "steps": mean_std(r.get("steps") for r in ok),
            "n": len(ok),
            "unfinished": sum(r.get("status") in UNFINISHED for r in runs),
            "failed": sum(r.get("status") not in ("ok", *UNFINISHED) for r in runs),
        })
    return rows


def arm_wm_accuracy(runs: list[dict[str, Any]]) -> tuple[tuple[float, float, int] | None, str]:
    """Mean ± std of the arm's WM token accuracy and its source: held-out values only when any
    run has one (never averaged with training-batch values), else the training-batch values."""
    measured = [wm_accuracy(r) for r in runs]
    source = "held-out" if any(src == "held-out" for _, src in measured) else "train"
    return mean_std(v for v, src in measured if src == source), source


def fmt_wm(stats: tuple[tuple[float, float, int] | None, str]) -> str:
    value, source = stats
    text = fmt_mean_std(value)
    return f"{text} (train)" if value is not None and source == "train" else text


def markdown_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| arm | final success | mean return | WM token accuracy | wall time (s) | steps | seeds |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        notes = [f"{row[k]} {k}" for k in ("unfinished", "failed") if row.get(k)]
        seeds = f"{row['n']}" + (f" ({', '.join(notes)})" if notes else "")
        lines.append(
            f"| {row['arm']} | {fmt_mean_std(row['success'])} | {fmt_mean_std(row['return'])} | "
            f"{fmt_wm(row['wm_accuracy'])} | {fmt_mean_std(row['wall'], 1)} | {fmt_mean_std(row['steps'], 0)} | {seeds} |"
        )
    return "\n".join(lines)


def write_report(sweep: SweepConfig) -> Path:
    out = Path(sweep.output_dir)
    records = latest_records(read_results(out / RESULTS_FILE))
    rows = arm_rows(sweep, records)
    png = plot_curves(sweep, records, out / f"{sweep.name}-curves.png")
    lines = [
        f"# Sweep `{sweep.name}`: {sweep.env}",
        "",
        f"Seeds {sweep.seeds}; shared overrides: `{' '.join(sweep.overrides) or '(none)'}`; "
        f"config files: {', '.join(f'`{c}`' for c in sweep.config) or '(configs/<env>.yaml)'}; "
        f"{sweep.threads} thread(s) per run, {sweep.parallel} run(s) at once.",
        "",
        markdown_table(rows) if rows else "_no results yet_",
        "",
        "Mean ± half-width of the 95 % Student-t interval over seeds (one seed: the value alone). *final success*: greedy success on the eval split after the last "
        "step (last `eval/success_rate`); *WM token accuracy*: argmax == target on next-observation tokens"
        + (f" of {sweep.wm_eval_episodes} held-out episodes played by the final checkpoint (`pawkit eval`)"
           if sweep.wm_eval_episodes else "")
        + "; values marked (train) are the last training step's `paw/wm_token_accuracy` (training batch, not held-out); "
        "*wall time*: the training process, one run.",
        "",
    ]
    if sweep.pairs:
        lines += ["## Paired by seed", "", "Treatment − base over the seeds where both finished: mean difference "
                  "[95 % t interval] and the two-sided exact sign-flip p-value (with 5 seeds the smallest possible p is 0.0625).",
                  "", "| pair | metric | difference [95 % interval] | p | seeds |", "|---|---|---|---|---|",
                  *paired_rows(sweep, records), ""]
        if divergence := divergence_rows(sweep, records):
            lines += ["Did the treatment change what was sampled? Training steps whose batch equals the base's "
                      "exactly in mean return and generated action tokens (over the seeds both finished), and per seed "
                      "the first step where it differs (never: the same episodes were sampled at every step).", "",
                      "| pair | steps with the same training batch | first differing step, by seed |", "|---|---|---|",
                      *divergence, ""]
    sampled_keys, sampled = sampled_rows(sweep, records)
    if sampled:
        lines += ["## Sampled evaluation", "", "Each of the first eval tasks played max(k) times at `rollout.temperature` "
                  "after the last step: *pass@k* = P(at least one success in k of them), *best_of_k_return@k* = the expected "
                  "largest return of k of them (unbiased estimators, pawkit/train/pass_at_k.py); mean ± 95 % half-width over seeds.",
                  "", "| arm | " + " | ".join(sampled_keys) + " | seeds |", "|---" * (len(sampled_keys) + 2) + "|", *sampled, ""]
    activity = activity_rows(sweep, records)
    if activity:
        lines += ["## World model over training", "", "Training-batch values of the PaW arms, averaged over each run's steps "
                  "(mean ± 95 % half-width over seeds): WM token accuracy and target probability on the selected "
                  "next-observation tokens, and the CMAE activity diagnostic — the share of those tokens with p > ρ "
                  "(no gradient), ε < p ≤ ρ (where the clipped MAE acts) and p ≤ ε (effectively noise; ε = 0.01).", "",
                  "| arm | WM accuracy | WM target p | p > ρ | ε < p ≤ ρ | p ≤ ε |", "|---|---|---|---|---|---|", *activity, ""]
    if png is not None:
        lines += [f"![learning curves]({png.name})", ""]
    no_curve = [f"{arm} seed {seed}" for (arm, seed), r in sorted(records.items())
                if r.get("status") == "ok" and not run_curve(r, "eval/success_rate") and not run_curve(r, "rollout/success_rate")]
    if no_curve:
        lines += [f"Not in the curves (no stored curve and no metrics.jsonl left): {', '.join(no_curve)}.", ""]
    lines += ["## Arms", "", "| arm | overrides |", "|---|---|"]
    lines += [f"| {arm} | `{' '.join(o) or '(base)'}` |" for arm, o in sweep.arms.items()]
    lines += ["", "## Runs", "", "| arm | seed | status | steps | final success | return | WM acc | wall (s) |",
              "|---|---|---|---|---|---|---|---|"]
    for (arm, seed), r in sorted(records.items(), key=lambda kv: (list(sweep.arms).index(kv[0][0]) if kv[0][0] in sweep.arms else 1e9, kv[0][1])):
        lines.append(
            f"| {arm} | {seed} | {_status(r)} | {r.get('steps', '')} | {_num(r.get('final_success'))} | "
            f"{_num(r.get('final_return'))} | {fmt_record_wm(r)} | {_num(r.get('wall_seconds'), 1)} |"
        )
    stopped = [r for r in records.values() if r.get("status") in UNFINISHED]
    if stopped:
        lines += ["", "## Unfinished runs", "", "Stopped by a signal before `trainer.steps` (checkpoint kept), or set aside "
                  "because the sweep's setup changed (`--rerun-changed`); not in the tables above; the next `pawkit sweep` "
                  "resumes or runs them:", ""]
        lines += [f"- {r['arm']} seed {r['seed']}: " + (r.get("error", "setup changed") if r.get("status") == "changed"
                  else f"step {r.get('steps')} of {r.get('target_steps', '?')}") for r in stopped]
    failed = [r for r in records.values() if r.get("status") not in ("ok", *UNFINISHED)]
    if failed:
        lines += ["", "## Failed runs", ""]
        for r in failed:
            last = (r.get("error") or "").strip().splitlines()
            lines.append(f"- {r['arm']} seed {r['seed']}: `{last[-1] if last else 'unknown error'}` (see {Path(r['metrics']).parent}/train.log)")
    path = out / "report.md"
    out.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def fmt_record_wm(record: dict[str, Any]) -> str:
    """One run's WM token accuracy as the tables and the sweep's progress lines print it."""
    value, source = wm_accuracy(record)
    return _num(value) + (" (train)" if source == "train" else "")


def _status(record: dict[str, Any]) -> str:
    if record.get("status") == "changed":
        return "unfinished (set aside: setup changed; not run again yet)"
    if record.get("status") == "stopped":
        return f"unfinished (stopped at step {record.get('steps')} of {record.get('target_steps', '?')})"
    return str(record.get("status"))


def _num(value: Any, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"
