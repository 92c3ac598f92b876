"""Run configuration: pydantic models, YAML files in ``configs/`` and dotted ``key=value`` overrides.

Every problem (unknown key, bad value, bad file) becomes a ``ConfigError`` whose message has
one line per problem naming the key, so the CLI can print it and exit 2 without a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pawkit.protocol import UsageError


def _config_dir() -> Path:
    """The repo's ``configs/`` (installed as the data package ``pawkit_configs``)."""
    try:
        import pawkit_configs

        return Path(next(iter(pawkit_configs.__path__)))
    except (ImportError, StopIteration):
        return Path(__file__).resolve().parent.parent / "configs"


CONFIG_DIR = _config_dir()


class ConfigError(UsageError):
    """A config problem; the message has one line per problem, each naming the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class EnvConfig(_Section):
    name: str = "gridnav"
    options: dict[str, Any] = Field(default_factory=dict, description="passed to the env factory")
    train_split: str = "train"
    eval_split: str = "train"


class LoraConfig(_Section):
    enabled: bool = False
    r: int = Field(8, ge=1)
    alpha: int = Field(16, ge=1)
    dropout: float = Field(0.0, ge=0, le=1)
    target_modules: list[str] | str = "all-linear"


class ModelConfig(_Section):
    name: str = "tiny"
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    lora: LoraConfig = Field(default_factory=LoraConfig)
    gradient_checkpointing: bool = False
    device: str = Field("auto", pattern=r"^(auto|cpu|mps|cuda(:\d+)?)$", description="auto = this process's GPU (cuda:LOCAL_RANK) when there is one, else cpu")


class RolloutConfig(_Section):
    group_size: int = Field(8, ge=1)
    tasks_per_step: int = Field(16, ge=1)
    max_steps: int | None = Field(None, ge=1, description="per-episode turn limit; None = env default")
    history_length: int = Field(2, ge=0)
    max_new_tokens: int = Field(512, ge=1)
    max_prompt_tokens: int = Field(4096, ge=16)
    temperature: float = Field(1.0, gt=0)
    top_p: float = Field(1.0, gt=0, le=1)
    eval_temperature: float = Field(0.4, ge=0)
    output_format: Literal["think_action", "action", "plain"] = "think_action"
    prompt_style: Literal["verl", "compact"] = "verl"
    constrained: bool = False
    numbered_actions: bool = Field(False, description="list admissible actions as 1..N and reply with a number (tiny models, long action strings)")
    invalid_penalty: float = 0.1
    chat_template: bool = True
    fallback_chars: int = Field(30, ge=1, description="reply tail sent to the env when tags are missing")
    generation_batch_size: int = Field(64, ge=1)
    num_workers: int = Field(0, ge=0, description="env worker processes; 0 = in-process")
    step_timeout: float | None = Field(None, gt=0, description="seconds before a hung env step is abandoned")

    @model_validator(mode="after")
    def _constrained_needs_action_format(self):
        if self.constrained and self.output_format == "think_action":
            raise ValueError("constrained decoding needs rollout.output_format=action or plain (no free-form <think>)")
        return self


class AlgorithmConfig(_Section):
    name: str = "grpo"
    gamma: float = Field(0.95, ge=0, le=1)
    norm_by_std: bool = True
    gigpo_mode: Literal["mean_norm", "mean_std_norm"] = "mean_std_norm"
    step_advantage_weight: float = 1.0
    clip_low: float = Field(0.2, ge=0)
    clip_high: float = Field(0.2, ge=0)
    clip_ratio_c: float = Field(3.0, gt=1)
    kl_coef: float = Field(0.01, ge=0)
    entropy_coef: float = Field(0.0, ge=0)
    ppo_epochs: int = Field(1, ge=1)


class PawConfig(_Section):
    enabled: bool = False
    selector: str = "entropy"
    wm_loss: str = "cmae"
    balancer: str = "reward_adaptive"
    lambda0: float = 0.05
    rho: float = Field(0.2, ge=0, le=1)
    keep_ratio: float = Field(0.75, ge=0, le=1)
    max_obs_tokens: int = Field(256, ge=1)
    delimiter: str = "\nNext observation:\n"


class TrainerConfig(_Section):
    steps: int = Field(100, ge=0)
    output_dir: str = "runs/default"
    lr: float = Field(1e-6, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    lr_schedule: Literal["constant", "linear", "cosine"] = "constant"
    warmup_steps: int = Field(0, ge=0)
    grad_clip: float = Field(1.0, gt=0)
    micro_batch_tokens: int = Field(8192, ge=16)
    bf16: bool = False
    save_every: int = Field(10, ge=1)
    keep_checkpoints: int = Field(2, ge=1)
    eval_every: int = Field(0, ge=0)
    eval_episodes: int = Field(32, ge=1)
    eval_before_after: bool = Field(False, description="evaluate before the first and after the last step, and print both")
    early_stop_success: float | None = Field(None, ge=0, le=1, description="stop once greedy eval success (training-batch success if eval_every=0) reaches this")
    dump_trajectories_every: int = Field(10, ge=0)
    tensorboard: bool = False
    max_env_error_rate: float = Field(0.5, ge=0, le=1)
    max_nonfinite_in_a_row: int = Field(3, ge=1, description="stop after this many skipped (NaN/inf) updates in a row")


class Config(_Section):
    seed: int = 0
    env: EnvConfig = Field(default_factory=EnvConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
    algorithm: AlgorithmConfig = Field(default_factory=AlgorithmConfig)
    paw: PawConfig = Field(default_factory=PawConfig)
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)


def _format_errors(err: ValidationError, prefix: str = "") -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"])
        if e["type"] == "extra_forbidden":
            lines.append(f"{prefix}unknown config key '{key}'")
        elif isinstance(e.get("input"), dict):  # a cross-field rule of a whole section
            lines.append(f"{prefix}invalid '{key}' section: {e['msg'].removeprefix('Value error, ')}")
        else:
            value = e.get("input")
            lines.append(f"{prefix}invalid value for '{key}': {value!r} ({e['msg']})")
    return "\n".join(lines)


def parse_overrides(overrides: list[str]) -> dict[str, Any]:
    """``["a.b=1", "c=x"]`` → nested dict; values are parsed as YAML scalars (``1`` → int)."""
    tree: dict[str, Any] = {}
    problems = []
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key or any(not part for part in key.split(".")):
            problems.append(f"malformed override {item!r}: expected key=value, e.g. trainer.steps=3")
            continue
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        node = tree
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                problems.append(f"override {item!r} conflicts with another override of '{part}'")
                break
        else:
            node[leaf] = value
    if problems:
        raise ConfigError("\n".join(problems))
    return tree


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key != "options":
            out[key] = _merge(out[key], value)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


def read_yaml(path: Path, what: str = "config file", empty_ok: bool = True) -> dict[str, Any]:
    """A YAML mapping from ``path``; a missing file, bad YAML or a non-mapping is one ConfigError line."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"{what} not found: {path}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if data is None and empty_ok:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {path} must hold a mapping at the top level")
    return data


def env_config_file(env: str) -> Path | None:
    """``configs/<env>.yaml`` for an env (``textarena/X`` → ``configs/textarena.yaml``)."""
    for stem in (env.replace("/", "_"), env.split("/")[0]):
        path = CONFIG_DIR / f"{stem}.yaml"
        if path.exists():
            return path
    return None


def load_config(
    env: str | None = None,
    config_file: str | Path | list[str | Path] | None = None,
    overrides: list[str] | None = None,
) -> Config:
    """Defaults ← ``configs/<env>.yaml`` ← ``overrides`` (later wins).

    Given ``config_file`` (one path or several, merged in order), those files replace the
    env's own file: ``--config configs/gridnav.yaml --config configs/ablations/loss-ce.yaml``.
    """
    data: dict[str, Any] = {}
    files = [config_file] if isinstance(config_file, (str, Path)) else list(config_file or [])
    if not files and env is not None and (path := env_config_file(env)) is not None:
        files = [path]
    for path in files:
        data = _merge(data, read_yaml(Path(path)))
    if env is not None:
        data = _merge(data, {"env": {"name": env}})
    data = _merge(data, parse_overrides(list(overrides or [])))
    try:
        return Config.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_errors(err)) from None


def dump_config(config: Config) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
