"""Run configuration: pydantic models, YAML files in ``configs/`` and dotted ``key=value`` overrides.

Every problem (unknown key, bad value, bad file) becomes a ``ConfigError`` whose message has
one line per problem naming the key, so the CLI can print it and exit 2 without a traceback.
Every field carries a one-line ``description`` (symbol, unit, source); ``pawkit config show
--explain`` prints them and ``python -m pawkit.config_reference > docs/config-reference.md``
regenerates the reference page from them (pawkit/config_reference.py).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Callable, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pawkit.config_files import ConfigError, DuplicateKeyError, _load_yaml, _merge, parse_overrides, read_yaml  # noqa: F401 (re-exported)


def _config_dir() -> Path:
    """The repo's ``configs/`` (installed as the data package ``pawkit_configs``)."""
    try:
        import pawkit_configs

        return Path(next(iter(pawkit_configs.__path__)))
    except (ImportError, StopIteration):
        return Path(__file__).resolve().parent.parent / "configs"


CONFIG_DIR = _config_dir()


class _Section(BaseModel):
    # allow_inf_nan=False: `.inf` / `.nan` is refused for every float key (`float | None` too)
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class EnvConfig(_Section):
    """The environment: which one, its options and the task splits."""

    name: str = Field("gridnav", description="registered environment (`pawkit envs`); `--env` sets it")
    options: dict[str, Any] = Field(default_factory=dict, description="keyword arguments of the env's constructor (adapter-specific, e.g. data_dir); files and overrides merge it key by key")
    train_split: str = Field("train", description="split the training tasks are drawn from")
    eval_split: str = Field("train", description="split of trainer.eval_every / eval_before_after evaluations and the default of `pawkit eval`")


class LoraConfig(_Section):
    """Low-rank adapters (PEFT LoRA) instead of full fine-tuning."""

    enabled: bool = Field(False, description="train LoRA adapters only; the KL reference is then the base model with the adapter disabled (no second copy)")
    r: int = Field(8, ge=1, description="r: rank of each LoRA update matrix")
    alpha: int = Field(16, ge=1, description="α: LoRA scaling; the update is multiplied by α/r")
    dropout: float = Field(0.0, ge=0, le=1, description="dropout probability on the LoRA input (0–1)")
    target_modules: list[str] | str = Field("all-linear", description="module names to adapt, or PEFT's \"all-linear\" (every linear layer except the output head)")
    layers: Annotated[str, Field(pattern=r"^(all|last:[1-9]\d*)$")] | list[Annotated[int, Field(ge=0)]] = Field("all", description="transformer blocks that get adapters: all, last:K (the top K: backward stops below them), or a list of block indices from 0")


class ModelConfig(_Section):
    """The policy model (which is also the world model) and where it runs."""

    name: str = Field("tiny", description="built-in name (tiny, smollm2-135m), Hugging Face id, or local model/checkpoint folder")
    dtype: Literal["float32", "bfloat16", "float16"] = Field("float32", description="dtype the weights are loaded in")
    lora: LoraConfig = Field(default_factory=LoraConfig)
    trainable_layers: Annotated[str, Field(pattern=r"^(all|last:[1-9]\d*)$")] | list[Annotated[int, Field(ge=0)]] = Field("all", description="full fine-tuning only: blocks trained — all, last:K (the top K plus the final norm; embeddings and LM head frozen, backward stops below) or a list of indices")
    gradient_checkpointing: bool = Field(False, description="recompute activations in the backward pass: less memory, more compute")
    device: str = Field("auto", pattern=r"^(auto|cpu|mps|cuda(:\d+)?)$", description="auto = this process's GPU (cuda:LOCAL_RANK) when there is one, else cpu")


class VllmConfig(_Section):
    """rollout.engine=vllm: a vLLM server that samples the rollouts (docs/running-at-scale.md)."""

    python: str | None = Field(None, description="Python of the vLLM side environment that runs the managed server; null = $PAWKIT_VLLM_PYTHON, else ~/.cache/pawkit/vllm-venv/bin/python (scripts/install-vllm.sh), else this Python if it has vllm")
    url: str | None = Field(None, description="use a server already running at this base URL (http://host:port) instead of starting one; it must share this machine's filesystem for weight syncs and run with the flags pawkit would pass (see the server log of a managed run)")
    cpu_threads: int = Field(1, ge=1, description="CPU only: OpenMP threads of the server's worker, bound to the machine's last cores (VLLM_CPU_OMP_THREADS_BIND)")
    kv_cache_gb: float = Field(1.0, gt=0, description="CPU only: KV-cache size (VLLM_CPU_KVCACHE_SPACE, GiB)")
    gpu_memory_utilization: float = Field(0.35, gt=0, le=1, description="GPU only: fraction of the GPU the server may take (the trainer needs the rest when both share it)")
    max_model_len: int | None = Field(None, ge=16, description="longest prompt + reply the server accepts (tokens); null = rollout.max_prompt_tokens + rollout.max_new_tokens")
    enforce_eager: bool = Field(True, description="no torch.compile / CUDA graphs: starts in ~30-60 s instead of 2-6 min on CPU; false for long GPU runs")
    lora_sync: Literal["auto", "adapter", "merged"] = Field("auto", description="LoRA runs: how the server gets each update — adapter (hot-swap the saved adapter, a new version name per update), merged (merge it into the base weights and reload them all), auto = merged on CPU (LoRA decoding there is 2.5-5x slower), adapter on GPU")
    tis_cap: float | None = Field(2.0, gt=0, description="truncated importance sampling: each action token's policy-gradient term is weighted by min(π_trainer / π_vllm, tis_cap) over the sampled token (verl, prime-rl); null = off")
    start_timeout: float = Field(600.0, gt=0, description="seconds the managed server may take to answer /health before the run stops with its log tail")
    request_timeout: float = Field(900.0, gt=0, description="seconds one sampling request may take")
    server_args: list[str] = Field(default_factory=list, description="extra command-line flags for the managed server (vllm.entrypoints.openai.api_server)")


class RolloutConfig(_Section):
    """How episodes are played: group sizes, prompts, sampling, reply format, env workers."""

    group_size: int = Field(8, ge=1, description="G: episodes per task, all reset to the same state; a GRPO/GiGPO/RLOO group (episodes)")
    tasks_per_step: int = Field(16, ge=1, description="tasks drawn per training step; a step plays tasks_per_step × group_size episodes (tasks)")
    max_steps: int | None = Field(None, ge=1, description="per-episode turn limit (turns); null = the env's own max_steps")
    engine: str = Field("hf", description="what samples the replies: a rollout engine plugin (`pawkit plugins`); hf = Hugging Face generate on the trainer's own model, vllm = a vLLM server (rollout.vllm)")
    vllm: VllmConfig = Field(default_factory=VllmConfig)
    context: Literal["step", "trajectory"] = Field("step", description="step = one prompt per turn (verl-agent: task, the last history_length pairs, observation); trajectory = one token sequence per episode that grows turn by turn (SkyRL/verifiers), trained as one sequence, PaW's WM targets its observation segments")
    history_length: int = Field(2, ge=0, description="most recent (observation, action) pairs shown in the prompt, as verl-agent's history_length (pairs)")
    max_new_tokens: int = Field(512, ge=1, description="longest reply the model may generate per turn (tokens)")
    max_prompt_tokens: int = Field(4096, ge=16, description="longest prompt of one turn (tokens); step context: a longer one is shortened and counted in rollout/truncated_prompts; trajectory context: the budget of the whole episode's sequence — an episode whose next observation does not fit ends (rollout/context_ended)")
    temperature: float = Field(1.0, gt=0, description="sampling temperature of training rollouts; the update's action log-probs use the same temperature")
    top_p: float = Field(1.0, gt=0, le=1, description="nucleus sampling: keep the smallest token set with this much probability (0–1]; 1 = off; ignored when greedy")
    eval_temperature: float = Field(0.4, ge=0, description="sampling temperature of evaluations (trainer evals and `pawkit eval`); 0 = greedy; the pass@k evaluation (trainer.eval_pass_k) samples at rollout.temperature instead")
    output_format: Literal["think_action", "action", "plain"] = Field("think_action", description="reply format: <think>…</think><action>…</action> (verl-agent), <action>…</action> only, or the bare command")
    prompt_style: Literal["verl", "compact"] = Field("verl", description="verl = verl-agent's prompt templates; compact = task, history and observation only (tiny models)")
    constrained: bool = Field(False, description="decode only admissible replies (token trie over the action list); the prompt then omits the list; needs output_format action or plain")
    numbered_actions: bool = Field(False, description="list admissible actions as 1..N and reply with a number (tiny models, long action strings)")
    invalid_penalty: float = Field(0.1, description="subtracted from the score of each step whose action was invalid, that step only (verl-agent's invalid_action_penalty_coef; reward units)")
    chat_template: bool = Field(True, description="wrap each prompt in the tokenizer's chat template, when it has one")
    fallback_chars: int = Field(30, ge=1, description="a reply without one <action>…</action> block is sent to the env as this many of its characters, marked invalid (characters)")
    generation_batch_size: int = Field(64, ge=1, description="most prompts per generate call; more active episodes are generated in several calls (sequences)")
    num_workers: int = Field(0, ge=0, description="env worker processes; 0 = in-process")
    step_timeout: float | None = Field(None, gt=0, description="seconds a worker may take over one round of env steps (or resets) before it is restarted and its episodes count as env errors; num_workers > 0 only; null = wait")

    @model_validator(mode="after")
    def _constrained_needs_action_format(self):
        if self.constrained and self.output_format == "think_action":
            raise ValueError("constrained decoding needs rollout.output_format=action or plain (no free-form <think>)")
        return self


class AlgorithmConfig(_Section):
    """The RL algorithm: advantage estimator and the PPO-clip loss on action tokens."""

    name: str = Field("grpo", description="advantage estimator plugin: grpo, gigpo, rloo or ppo (GAE with a learned critic) (`pawkit plugins`)")
    gamma: float = Field(0.95, ge=0, le=1, description="γ: discount over a trajectory's steps: GiGPO's step returns R_t = r_t + γ·R_{t+1} (GiGPO Eq. 5) and ppo's GAE δ_t = r_t + γ·V(s_{t+1}) − V(s_t); grpo and rloo ignore it (0–1)")
    gae_lambda: float = Field(1.0, ge=0, le=1, description="λ of ppo's GAE, A_t = Σ_k (γλ)^k δ_{t+k} (Schulman et al. 2016, Eq. 16): 1 = Monte-Carlo return − V (verl's default lam), 0 = one-step TD error (0–1)")
    value_coef: float = Field(0.1, ge=0, description="ppo: weight of the critic's value loss in the total loss (TRL's vf_coef; the value head shares the policy's trunk, so its gradient also moves the policy)")
    value_clip: float = Field(0.2, ge=0, description="ppo: ε_v of PPO2's clipped value loss ½·max((V−R)², (V_old + clip(V−V_old, ±ε_v) − R)²), reward units; 0 = unclipped ½·(V−R)²")
    norm_by_std: bool = Field(True, description="grpo: divide the group-centred score by the group std; false = mean-only, as Dr GRPO (verl's norm_adv_by_std_in_grpo)")
    gigpo_mode: Literal["mean_norm", "mean_std_norm"] = Field("mean_std_norm", description="gigpo normalisation of both advantages: (x − mean)/(std + ε), or x − mean (GiGPO's F_norm = 1)")
    step_advantage_weight: float = Field(1.0, description="ω: weight of GiGPO's step advantage, A = A^E + ω·A^S (GiGPO Eq. 8)")
    clip_low: float = Field(0.2, ge=0, description="ε_low of PPO-clip: ratio lower bound 1 − ε_low")
    clip_high: float = Field(0.2, ge=0, description="ε_high of PPO-clip: ratio upper bound 1 + ε_high (> ε_low = DAPO's clip-higher)")
    clip_ratio_c: float = Field(3.0, gt=1, description="c of dual-clip PPO (verl): for A < 0 the token loss is capped at −A·c (> 1)")
    kl_coef: float = Field(0.01, ge=0, description="β: weight of the k3 KL to the reference (initial) policy, token-mean over action tokens (verl's low_var_kl); 0 = no reference model")
    entropy_coef: float = Field(0.0, ge=0, description="weight of the entropy bonus (subtracted from the loss), token-mean over action tokens")
    ppo_epochs: int = Field(1, ge=1, description="passes over each rollout batch, one optimizer step each; with 1 the PPO ratio is exactly 1 and the clip never acts")
    old_logprobs: Literal["auto", "recompute", "sampled"] = Field("auto", description="PPO's old log-probs and PaW's entropies: the sampler's recorded ones (sampled), a no-grad pass (recompute), or auto = sampled when they are the same numbers (ppo_epochs 1, float32, no bf16)")
    options: dict[str, Any] = Field(default_factory=dict, description="options of the advantage estimator plugin, checked against its Options model before the model loads (`pawkit plugins --explain`)")
    loss_aggregation: Literal["token_mean", "seq_mean_token_mean", "seq_mean_token_sum_norm"] = Field("token_mean", description="how the PPO, entropy and KL terms average per-token losses: over all action tokens (DAPO), mean over rows of each row's token mean (GRPO), or each row's token sum / rollout.max_new_tokens, mean over rows (Dr. GRPO; verl's seq-mean-token-sum-norm); PaW's WM term keeps its own")
    filter_groups: Literal["none", "zero_variance"] = Field("none", description="zero_variance: rollout groups whose scores (episode return − the row's invalid penalty) are all equal, so their GRPO/RLOO advantage is 0, leave the RL loss (DAPO's dynamic-sampling filter); none = keep every group")
    resample: bool = Field(False, description="with filter_groups: play more rounds of rollout.tasks_per_step fresh tasks until the step has tasks_per_step informative groups or max_resample_rounds is reached (DAPO's dynamic sampling)")
    max_resample_rounds: int = Field(3, ge=1, description="most extra rollout rounds one step plays with resample=true (rounds)")
    filter_wm: Literal["keep", "drop"] = Field("keep", description="with paw.enabled: filtered groups still train the world model (keep: their transitions are valid WM targets; in the batch's places left, ≤ tasks_per_step groups in all) or leave the batch (drop)")

    @model_validator(mode="after")
    def _resample_needs_a_filter(self):
        if self.resample and self.filter_groups == "none":
            raise ValueError("algorithm.resample=true needs algorithm.filter_groups=zero_variance (with none every group is informative)")
        return self


class PawConfig(_Section):
    """PaW: the world-model loss on next-observation tokens, and which steps get it with what weight."""

    enabled: bool = Field(True, description="add PaW's world-model loss on o_{t+1} tokens (on by default: it is what pawkit is for); false = the plain RL baseline")
    selector: str = Field("entropy", description="which eligible transitions get a WM loss: entropy (top κ by mean action-token entropy, PaW), all, random, low_entropy")
    wm_loss: str = Field("cmae", description="WM loss per target token: cmae (PaW's clipped MAE), ce (cross-entropy, ECHO-style), mae (no clip)")
    targets: str = Field("next_observation", description="what each transition's WM target is made of: next_observation (o_{t+1}, PaW) or shuffled (another transition's o_{t+1} from the same batch: the control for 'any extra LM loss'); step context only, except strategies marked in_sequence")
    balancer: str = Field("reward_adaptive", description="per-group WM weight λ_g: reward_adaptive (PaW), fixed (λ_g = λ0), none (λ_g = 0)")
    lambda0: float = Field(0.05, description="λ0: base weight of the WM loss; λ_g = λ0·(1 − R̄_g/R_max) (reward_adaptive, PaW) or λ0 (fixed)")
    rho: float = Field(0.2, ge=0, le=1, description="ρ: clipped-MAE threshold: a WM target token with probability p > ρ gets no loss or gradient (PaW; cmae only; per-token probability at temperature 1, 0–1)")
    keep_ratio: float = Field(0.75, ge=0, le=1, description="κ: fraction of eligible transitions the selector keeps, ⌈κ·N⌉ of the batch's N (PaW; selector all ignores it; 0–1)")
    max_obs_tokens: int = Field(256, ge=1, description="WM target length limit: delimiter + o_{t+1} is cut to this many tokens (tokens)")
    delimiter: str = Field("\nNext observation:\n", description="text between the reply a_t and o_{t+1}; its tokens are WM targets too and count toward max_obs_tokens")
    options: dict[str, Any] = Field(default_factory=dict, description="options of the selector, WM loss and balancer plugins: each takes the keys its Options model declares; a key none declares is refused (`pawkit plugins --explain`)")


class TrainerConfig(_Section):
    """The training loop: steps, optimizer, memory, checkpoints, evaluation, logging, stop rules."""

    steps: int = Field(100, ge=0, description="training steps (one rollout batch + update each), counted across resumes")
    output_dir: str = Field("runs/default", description="run folder: run.json, metrics.jsonl, checkpoints/, trajectories/, env_errors.log")
    lr: float = Field(1e-6, gt=0, description="learning rate (AdamW); the peak when a schedule or warmup applies; every PPO epoch of a step uses that step's lr")
    weight_decay: float = Field(0.01, ge=0, description="AdamW's decoupled weight decay")
    lr_schedule: Literal["constant", "linear", "cosine"] = Field("constant", description="lr multiplier after warmup: constant 1, or linear/cosine decay to 0 at trainer.steps")
    warmup_steps: int = Field(0, ge=0, description="linear lr warmup from lr/warmup_steps to lr (training steps; the schedule advances once per step)")
    grad_clip: float = Field(1.0, gt=0, description="clip the global gradient L2 norm to this before each optimizer step")
    micro_batch_tokens: int = Field(8192, ge=16, description="padded tokens per forward pass (rows × longest row; a longer row goes alone); a memory knob, the loss is the same (tokens)")
    bf16: bool = Field(False, description="run the training forward passes under bfloat16 autocast (weights keep model.dtype)")
    save_every: int = Field(10, ge=1, description="write a checkpoint every this many steps, and after the last (steps)")
    keep_checkpoints: int = Field(2, ge=1, description="complete checkpoints kept in output_dir/checkpoints; older ones are deleted")
    eval_every: int = Field(0, ge=0, description="evaluate on env.eval_split every this many steps at rollout.eval_temperature (steps); 0 = never")
    eval_episodes: int = Field(32, ge=1, description="episodes per trainer evaluation (episodes)")
    eval_batch_episodes: int | None = Field(None, ge=1, description="episodes an evaluation plays at once (one generate batch per turn; the main job plays its 50 at once: ~75 s on 2 cores, peak RSS 3.3 GB); null = rollout.tasks_per_step × rollout.group_size (episodes)")
    eval_before_after: bool = Field(False, description="evaluate before the first and after the last step, and print both")
    eval_pass_k: list[int] = Field(default_factory=list, description="also sample max(k) episodes of each of the first trainer.eval_pass_tasks tasks at rollout.temperature after each evaluation, and log eval/pass@k and eval/best_of_k_return@k for each k (pawkit/train/pass_at_k.py; Chen et al. 2021's unbiased pass@k); [] = no sampled evaluation")
    eval_pass_tasks: int = Field(25, ge=1, description="tasks of the sampled (pass@k) evaluation: the first ones of env.eval_split; it plays this × max(trainer.eval_pass_k) episodes (tasks)")
    early_stop_success: float | None = Field(None, ge=0, le=1, description="stop once eval success rate (training-batch success if eval_every=0) reaches this (0–1); null = never")
    dump_trajectories_every: int = Field(10, ge=0, description="write that step's episodes to output_dir/trajectories/step-N.jsonl every this many steps (steps); 0 = never")
    report_to: list[str] = Field(default_factory=lambda: ["jsonl"], description="experiment trackers the step metrics go to: jsonl (output_dir/metrics.jsonl, always on), tensorboard, wandb (offline unless WANDB_MODE=online), trackio (pawkit/train/trackers.py; a missing package is refused before the model loads, with its install hint)")
    tensorboard: bool = Field(False, description="old spelling of report_to: [jsonl, tensorboard] (still honoured; needs pawkit[tensorboard])")
    max_env_error_rate: float = Field(0.5, ge=0, le=1, description="stop when more than this fraction of a step's episodes hit env errors (0–1)")
    max_nonfinite_in_a_row: int = Field(3, ge=1, description="stop after this many skipped (NaN/inf) updates in a row")

    @model_validator(mode="after")
    def _pass_k_positive(self):
        if any(k < 1 for k in self.eval_pass_k):
            raise ValueError(f"trainer.eval_pass_k needs every k >= 1, got {self.eval_pass_k}")
        return self


class Config(_Section):
    """A whole run."""

    seed: int = Field(0, ge=0, le=2**32 - 1, description="random seed of Python, torch and numpy, of task draws and of the PaW selector (numpy accepts 0 … 2³²−1)")
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


def env_config_file(env: str, folder: Path | None = None) -> Path | None:
    """``<folder>/<env>.yaml`` (default: pawkit's ``configs/``) for an env (``textarena/X`` →
    ``textarena_X.yaml``, else ``textarena.yaml``), or None."""
    for stem in (env.replace("/", "_"), env.split("/")[0]):
        path = (CONFIG_DIR if folder is None else folder) / f"{stem}.yaml"
        if path.exists():
            return path
    return None


# (label, data) of the config an env plugin ships, or None; set by pawkit.plugins when it is
# imported (the registry is a layer above this module).
_env_config_lookup: Callable[[str], tuple[str, dict[str, Any]] | None] = lambda env: None  # noqa: E731


def set_env_config_lookup(lookup: Callable[[str], tuple[str, dict[str, Any]] | None]) -> None:
    global _env_config_lookup
    _env_config_lookup = lookup


def run_config_file(path: str | Path) -> Path | None:
    """The saved ``config.yaml`` of the run that ``path`` belongs to: a run folder, its
    ``checkpoints/step-N`` or that step's ``model/``; None for anything else."""
    path = Path(path).expanduser()
    for run in (path, *(p.parent for p in (path.parent, path.parent.parent) if p.name == "checkpoints")):
        if (run / "config.yaml").is_file() and (run / "checkpoints").is_dir():
            return run / "config.yaml"
    return None


def _shown(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def config_layers(env: str | None, config_file: str | Path | list[str | Path] | None, overrides: list[str] | None) -> list[tuple[str, dict[str, Any]]]:
    """(source label, data) of every layer ``load_config`` merges, lowest first (see there)."""
    files = [config_file] if isinstance(config_file, (str, Path)) else list(config_file or [])
    layers: list[tuple[str, dict[str, Any]]] = []
    for path in files:  # a run folder or checkpoint stands for its run's config.yaml
        run = run_config_file(path) if Path(path).expanduser().is_dir() else None
        label = f"run config {_shown(run)}" if run else f"--config {path}"
        layers.append((label, read_yaml(run or Path(path))))
    if not files and env is not None:
        owned = _env_config_lookup(env)
        path = None if owned else env_config_file(env)
        if owned:
            layers.append(owned)
        elif path is not None:
            layers.append((f"env config {_shown(path)}", read_yaml(path)))
        local = env_config_file(env, Path("configs"))
        if local is not None and (path is None or local.resolve() != path.resolve()):
            layers.append((f"./configs {_shown(local)}", read_yaml(local)))
    if env is not None:
        layers.append(("--env", {"env": {"name": env}}))
    layers.append(("override", parse_overrides(list(overrides or []))))
    return layers


def _record(sources: dict[str, str], label: str, data: dict[str, Any], prefix: str = "") -> None:
    for key, value in data.items():  # an `options` entry is a leaf (as in _merge)
        sources[f"{prefix}{key}"] = label
        if isinstance(value, dict) and not prefix.endswith("options."):
            _record(sources, label, value, f"{prefix}{key}.")


def load_config_with_sources(
    env: str | None = None,
    config_file: str | Path | list[str | Path] | None = None,
    overrides: list[str] | None = None,
) -> tuple[Config, dict[str, str]]:
    """``load_config`` and, per dotted key a layer set, the label of the last layer that set it
    (``"--config FILE"``, ``"override"``, ...); a key no layer set is at its pawkit default.
    An ``options`` key lists every layer that set one of its entries (``"a + b"``)."""
    if isinstance(overrides, str):
        raise ConfigError(f"overrides must be a list of key=value strings, e.g. [{overrides!r}], not one string")
    data: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for label, layer in config_layers(env, config_file, overrides):
        data = _merge(data, layer)
        _record(sources, label, layer)
    for key in [k for k in sources if k.rpartition(".")[2] == "options"]:
        labels = [sources[k] for k in sources if k.startswith(key + ".")]
        sources[key] = " + ".join(dict.fromkeys(labels)) or sources[key]
    try:
        return Config.model_validate(data), sources
    except ValidationError as err:
        raise ConfigError(_format_errors(err)) from None


def load_config(env: str | None = None, config_file: str | Path | list[str | Path] | None = None,
                overrides: list[str] | None = None) -> Config:
    """The run config: pawkit defaults ← env config ← ``./configs/<env>.yaml`` ← ``--config``
    files ← ``--env`` ← ``overrides`` (later wins; sections merge key by key).

    The env config is the one the env's plugin ships (``register(..., config=)``; seen once
    ``pawkit.plugins`` is imported, as ``pawkit.load_config``, the CLI and the trainer do), else
    pawkit's own ``configs/<env>.yaml``; ``./configs/<env>.yaml`` is the current folder's (skipped
    when it is that same file). Given ``config_file`` (one path or several, merged in order), those
    files replace both env layers, as before: ``--config configs/gridnav.yaml --config
    configs/ablations/loss-ce.yaml``. A folder of a pawkit run (or one of its checkpoints) stands
    for that run's saved ``config.yaml``. Problems are one ConfigError line each.
    """
    return load_config_with_sources(env, config_file, overrides)[0]


def check_writable_dir(path: str | Path, key: str) -> None:
    """A ConfigError naming ``key`` unless ``path`` is, or can be made, a folder we may write (nothing is created)."""
    target = probe = Path(path).expanduser()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError(f"{key}={path} {'is a file' if probe == target else f'is inside {probe}, a file'}, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(f"{key}={path} is not writable" + ("" if probe == target else f" ({probe} is not)"))


def dump_config(config: Config) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
