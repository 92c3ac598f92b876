"""What a rollout hands to training: one ``StepSample`` per env step, gathered in a ``RolloutBatch``.

A sample holds the exact token ids the model saw and produced (never re-tokenised for the
loss), plus what PaW (the next observation) and GiGPO (the anchor state) need later.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from pawkit.protocol import Episode


@dataclass
class StepSample:
    group_id: str
    traj_id: str
    step_index: int
    prompt_ids: list[int]
    response_ids: list[int]
    reward: float
    invalid: bool
    anchor: str
    next_observation_text: str | None
    allowed: list[list[int]] | None = None  # constrained decoding: allowed ids per response token
    episode_return: float = 0.0
    # the sampler's log-prob of each response token and its distribution's entropy (nats):
    # equal to the training forward's at sampling time (≤1e-5), so one PPO epoch needs no old-log-prob pass
    sampled_logprobs: list[float] | None = None
    sampled_entropies: list[float] | None = None
    action_text: str = ""  # the command sent to the env
    observation_text: str = ""  # o_t as the prompt shows it (env.format_observation)
    # rollout.context=trajectory (pawkit/rollout/trajectory.py): the episode's one token sequence,
    # shared by its steps (complete once the episode ends); response_ids == context[start : start + R],
    # the next observation's message (the WM target) == context[wm_start : wm_start + wm_tokens]
    context: list[int] | None = None
    start: int = 0
    wm_start: int = 0
    wm_tokens: int = 0


@dataclass
class RolloutBatch:
    episodes: list[Episode]
    samples: list[StepSample]
    env_errors: int = 0
    env_error_messages: list[str] = field(default_factory=list)
    engine_lost: int = 0  # of env_errors: episodes ended because the engine lost their turn (TurnLost)
    truncated_prompts: int = 0
    unsolvable_episodes: int = 0  # episodes whose task needs more turns than their limit
    env_seconds: float = 0.0
    generate_seconds: float = 0.0
    generated_tokens: int = 0

    def metrics(self) -> dict[str, float]:
        """The step's ``rollout/`` and ``perf/`` numbers (docs/training.md): episode statistics
        over the episodes without an env error, counts over all of them."""
        kept = [e for e in self.episodes if e.end_reason != "env_error"]
        out = {f"rollout/{k}": v for k, v in episode_stats(kept).items()}
        out.update({
            "rollout/episodes": float(len(self.episodes)),
            "rollout/env_errors": float(self.env_errors),
            "rollout/engine_lost_episodes": float(self.engine_lost),
            "rollout/truncated_prompts": float(self.truncated_prompts),
            "rollout/unsolvable_episodes": float(self.unsolvable_episodes),
            "rollout/context_ended": float(sum(e.end_reason == "context" for e in self.episodes)),
            "perf/env_seconds": self.env_seconds,
            "perf/generate_seconds": self.generate_seconds,
            "perf/generated_tokens": float(self.generated_tokens),
        })
        return out


def episode_stats(episodes: Sequence[Episode]) -> dict[str, float]:
    """Success rate, mean return, mean steps and invalid-action rate over ``episodes`` (0 when
    there are none): the one definition behind the training metrics, ``pawkit eval`` and
    ``pawkit play``."""
    n = max(len(episodes), 1)
    steps = sum(len(e.transitions) for e in episodes)
    return {
        "success_rate": sum(e.success for e in episodes) / n,
        "mean_return": sum(e.return_ for e in episodes) / n,
        "mean_steps": steps / n,
        "invalid_action_rate": sum(not t.action.valid for e in episodes for t in e.transitions) / max(steps, 1),
    }
