"""The step's metrics accumulator, and old-named metrics still read by the sweep report."""

import json

import pytest

from pawkit.experiments.results import OLD_METRIC_NAMES, read_metrics, renamed, summarize_run
from pawkit.train.metrics import Metrics


def test_add_is_a_weighted_mean_and_set_replaces():
    m = Metrics()
    m.add("loss/pg_loss", 1.0, weight=3)  # a micro-batch of 3 tokens
    m.add("loss/pg_loss", 2.0, weight=1)
    m.add("loss/grad_norm", 4.0)
    m.add("loss/grad_norm", 6.0)
    m.set("step", 1)
    m.set("step", 2)
    m.add("paw/wm_token_accuracy", float("nan"), weight=0)  # no tokens: the key exists, reads 0.0
    assert m.result() == {"loss/pg_loss": pytest.approx(5 / 4), "loss/grad_norm": 5.0, "step": 2.0,
                          "paw/wm_token_accuracy": 0.0}


def test_epochs_with_equal_weights_average_out():
    one, two = Metrics(), Metrics()
    for metrics, epochs in ((one, 1), (two, 2)):
        for _ in range(epochs):
            for value, tokens in ((0.5, 10), (0.25, 30)):
                metrics.add("loss/pg_loss", value, tokens)
            metrics.add("paw/wm_loss_raw", 0.75)  # once per epoch: a per-batch total
    assert one.result() == pytest.approx(two.result())


def test_old_metric_names_are_read_under_the_new_ones(tmp_path):
    assert OLD_METRIC_NAMES["success_rate"] == "rollout/success_rate" and OLD_METRIC_NAMES["pg_loss"] == "loss/pg_loss"
    assert renamed({"success_rate": 0.5, "rollout/success_rate": 0.25, "paw/wm_tokens": 3}) == {
        "rollout/success_rate": 0.25, "paw/wm_tokens": 3}  # a new name already there wins
    lines = [{"step": 1, "success_rate": 0.5, "mean_return": 0.5, "pg_loss": 0.1, "paw/wm_token_accuracy": 0.2},
             {"step": 2, "success_rate": 1.0, "mean_return": 0.75, "eval/success_rate": 0.5, "eval/mean_return": 0.4}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in lines))
    assert read_metrics(tmp_path / "metrics.jsonl")[0]["loss/pg_loss"] == 0.1
    summary = summarize_run(tmp_path)
    assert summary["final_train_success"] == 1.0 and summary["final_train_return"] == 0.75
    assert summary["curves"]["rollout/success_rate"] == [[1, 0.5], [2, 1.0]]
    assert summary["final_success"] == 0.5
