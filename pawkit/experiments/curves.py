"""The learning-curve PNG of a sweep's report: per arm the mean over its finished seeds with a
min–max band, for eval and training-batch success and mean return (``plot_curves``).

Each run's points come from its record's stored ``curves`` (so ``pawkit sweep --report-only`` can
redraw without the run folders), else from its ``metrics.jsonl``. matplotlib is optional: without
it no PNG is drawn and the report says so.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from pawkit.experiments.plan import SweepConfig
from pawkit.experiments.results import run_curve


def curves(sweep: SweepConfig, records: dict[tuple[str, int], dict[str, Any]], key: str = "eval/success_rate"):
    """arm -> (steps, mean, min, max, seeds) of ``key`` over the seeds that finished.

    A seed's value at a step is its latest value at or before that step (a run that stopped early
    keeps its last value), counted from the seed's first logged value.
    """
    out = {}
    for arm in sweep.arms:
        series = []
        for (a, _), record in sorted(records.items()):
            if a != arm or record.get("status") != "ok":
                continue
            points = run_curve(record, key)
            if points:
                series.append(dict(points))
        if not series:
            continue
        steps = sorted({s for points in series for s in points})
        mean, low, high, xs = [], [], [], []
        for step in steps:
            values = []
            for points in series:
                before = [s for s in points if s <= step]
                if before:
                    values.append(points[max(before)])
            if values:
                xs.append(step)
                mean.append(statistics.fmean(values))
                low.append(min(values))
                high.append(max(values))
        out[arm] = (xs, mean, low, high, len(series))
    return out


# One row of panels per quantity: (y label, y limits or None, [(metric key, panel title), ...]).
PANEL_ROWS = [
    ("success rate", (-0.02, 1.02),
     [("eval/success_rate", "eval success (greedy, held-out split)"), ("rollout/success_rate", "training-batch success")]),
    ("mean return", None,
     [("eval/mean_return", "eval mean return (greedy, held-out split)"), ("rollout/mean_return", "training-batch mean return")]),
]


def draw_panel(ax, sweep: SweepConfig, arms: dict[str, tuple], done: dict[str, int], cmap) -> None:
    """One panel of ``plot_curves``: per arm (``curves()``'s tuples) the mean over seeds with a
    min–max band along the training steps. Where every arm was evaluated once (after training
    only), one dot per arm with its min–max bar instead, the arms along x (a line through one
    point is invisible and a one-step axis says nothing); ``done`` counts each arm's finished
    seeds, so a label says when some seeds' curves are lost."""
    points = all(len(series[0]) == 1 for series in arms.values())
    for i, arm in enumerate(sweep.arms):
        if arm not in arms:
            continue
        xs, mean, low, high, seeds = arms[arm]
        color = cmap(i % 10)
        label = arm if seeds == done[arm] else f"{arm} ({seeds} of {done[arm]} seeds)"
        if len(xs) == 1:  # a dot with its min–max bar (beside curves of other arms: at its step)
            ax.errorbar([i] if points else xs, mean, yerr=[[mean[0] - low[0]], [high[0] - mean[0]]], fmt="o", color=color,
                        capsize=4, label=label)
            continue
        ax.plot(xs, mean, label=label, color=color, linewidth=1.6)
        ax.fill_between(xs, low, high, color=color, alpha=0.15, linewidth=0)
    if points and arms:
        shown = [(i, arm) for i, arm in enumerate(sweep.arms) if arm in arms]
        ax.set_xticks([i for i, _ in shown], [arm for _, arm in shown], rotation=30, ha="right", fontsize=8)
        steps = sorted({int(series[0][0]) for series in arms.values()})
        ax.set_xlabel(f"arm (after training step {', '.join(map(str, steps))})")
    else:
        ax.set_xlabel("training step")
    ax.grid(alpha=0.3)


def plot_curves(sweep: SweepConfig, records, path: Path) -> Path | None:
    """Per arm, mean over seeds with a min–max band: success (eval, training batch) and, when
    logged, mean return below it — where success is rare (WebShop) the return is what moves.
    None when nothing was logged or matplotlib is missing."""
    try:  # optional and slow to import: only when a report is drawn
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.container import ErrorbarContainer
    except ImportError:
        return None
    rows = [(*row, [curves(sweep, records, key) for key, _ in row[2]]) for row in PANEL_ROWS]
    rows = [row for row in rows if any(row[3])]
    if not rows:
        return None
    done = {arm: sum(1 for (a, _), r in records.items() if a == arm and r.get("status") == "ok") for arm in sweep.arms}
    fig, grid = plt.subplots(len(rows), 2, figsize=(12, 4.5 * len(rows)), sharey="row", squeeze=False)
    cmap = plt.get_cmap("tab10")
    for axes, (ylabel, ylim, panels, data) in zip(grid, rows):
        for ax, (key, title), arms in zip(axes, panels, data):
            draw_panel(ax, sweep, arms, done, cmap)
            ax.set_title(title)
            if ylim:
                ax.set_ylim(*ylim)
        axes[0].set_ylabel(f"{ylabel} (mean over seeds, band = min–max)")
        # the legend goes on the row's first panel that has lines (a panel of dots is labelled on x)
        for ax in axes:
            lines = [h for h in ax.get_legend_handles_labels()[0] if not isinstance(h, ErrorbarContainer)]
            if lines:  # a panel with no curves has nothing to label (no matplotlib warning)
                ax.legend(fontsize=8, loc="upper left")
                break
    fig.suptitle(f"{sweep.name} ({sweep.env}): mean over each arm's finished seeds")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
