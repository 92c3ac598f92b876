"""Registration of the built-in strategies, kept light: no torch is imported here.

Each family registers lazy ``"module:attr"`` references with an explicit description, so
``pawkit plugins`` and ``pawkit envs`` list them without importing the implementation modules
(``selectors``, ``wm_losses``, ``balancers``, ``advantages``: they import torch); a strategy's
module is imported the first time a run uses it. The four objects at the bottom are the
entry points of pyproject.toml, one per family, so each family keeps its plugin name.
"""

from __future__ import annotations

from typing import Callable

from pawkit.hookspecs import hookimpl

Table = dict[str, tuple[str, str]]  # name -> ("module:attr" under pawkit_plugins, description)

SELECTORS: Table = {
    "entropy": ("selectors:entropy", "Top ⌈κ·N⌉ transitions by mean action-token entropy (PaW's default)."),
    "all": ("selectors:all_transitions", "Every transition (κ = 1, ignores keep_ratio)."),
    "random": (
        "selectors:random_subset",
        "⌈κ·N⌉ transitions uniformly at random from the given generator (same count as entropy).",
    ),
    "low_entropy": (
        "selectors:low_entropy",
        "Bottom ⌈κ·N⌉ transitions by entropy (ablation: learn what the agent is sure about).",
    ),
}

WM_LOSSES: Table = {
    "cmae": (
        "wm_losses:clipped_mae",
        "ℓ = (1 − p)·[p ≤ ρ] averaged over all target tokens (PaW's noise-tolerant default).",
    ),
    "ce": ("wm_losses:cross_entropy", "Length-normalised cross-entropy −mean log p (the ECHO-style baseline)."),
    "mae": ("wm_losses:mae", "Mean absolute error 1 − p without clipping (cmae with ρ = 1)."),
}

BALANCERS: Table = {
    "reward_adaptive": (
        "balancers:reward_adaptive",
        "λ_g = λ0·(1 − R̄_g / R_max), unclipped: a negative mean return gives more than λ0.",
    ),
    "fixed": ("balancers:fixed", "λ_g = λ0 for every group."),
    "none": ("balancers:none", "λ_g = 0: plain RL (the WM tokens are still scored for metrics)."),
}

WM_TARGETS: Table = {
    "next_observation": ("wm_targets:next_observation", "o_{t+1}, the observation the action led to (PaW)."),
    "shuffled": (
        "wm_targets:shuffled",
        "Control: each transition gets another transition's o_{t+1} from the same batch (seeded derangement).",
    ),
}

ADVANTAGE_ESTIMATORS: Table = {
    "grpo": (
        "advantages:grpo",
        "Episode score normalised within its group (over all step rows); std division per norm_by_std.",
    ),
    "gigpo": (
        "advantages:gigpo",
        "Episode advantage + ω · step advantage over exact-match anchor-state groups (GiGPO Eq. 8).",
    ),
    "rloo": (
        "advantages:rloo",
        "Score minus the mean of the OTHER rows of its group, n/(n−1)·(x − mean); a lone row keeps its score.",
    ),
    "ppo": (
        "advantages:ppo",
        "GAE over each trajectory's step rewards from a learned value head (critic); whitened over the batch.",
    ),
}


def register_table(register: Callable[..., None], table: Table) -> None:
    for name, (target, description) in table.items():
        register(name, f"pawkit_plugins.{target}", description=description)


class _Selectors:
    @hookimpl
    def register_selectors(self, register):
        register_table(register, SELECTORS)


class _WorldModelLosses:
    @hookimpl
    def register_wm_losses(self, register):
        register_table(register, WM_LOSSES)


class _Balancers:
    @hookimpl
    def register_balancers(self, register):
        register_table(register, BALANCERS)


class _WorldModelTargets:
    @hookimpl
    def register_wm_targets(self, register):
        register_table(register, WM_TARGETS)


class _RolloutEngines:
    @hookimpl
    def register_rollout_engines(self, register):
        register("hf", "pawkit.rollout.generate:Generator",
                 description="Hugging Face generate: left-padded batches, the trainer's own model (no weight sync needed).")
        register("vllm", "pawkit.rollout.vllm_engine:VllmEngine",
                 description="a vLLM server (rollout.vllm; scripts/install-vllm.sh): token ids in and out, weights synced after each update.")


class _AdvantageEstimators:
    @hookimpl
    def register_advantage_estimators(self, register):
        register_table(register, ADVANTAGE_ESTIMATORS)


selectors = _Selectors()
wm_losses = _WorldModelLosses()
balancers = _Balancers()
wm_targets = _WorldModelTargets()
rollout_engines = _RolloutEngines()
advantages = _AdvantageEstimators()
