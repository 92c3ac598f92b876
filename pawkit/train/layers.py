"""Train only the top of the model: which transformer blocks get LoRA adapters
(``model.lora.layers``) or are fine-tuned (``model.trainable_layers``).

Backward stops at the lowest block with a trainable parameter: below it nothing requires a
gradient, so autograd never walks there. On SmolLM2-135M (30 blocks) ``last:8`` skips most of
the backward pass (docs/performance.md has the measured update speed-up).
"""

from __future__ import annotations

import torch

from pawkit.protocol import UsageError


def resolve_layers(spec: str | list[int], num_layers: int, key: str) -> list[int] | None:
    """Block indices from ``"all"`` (None: every block), ``"last:K"`` or a list; ``key`` names the
    config key in the one-line ``UsageError`` for an index outside ``0 … num_layers − 1``."""
    if spec == "all":
        return None
    if isinstance(spec, str):
        k = int(spec.split(":", 1)[1])
        if k > num_layers:
            raise UsageError(f"{key}={spec}: the model has only {num_layers} blocks")
        return list(range(num_layers - k, num_layers))
    bad = [i for i in spec if i >= num_layers]
    if bad or not spec:
        raise UsageError(f"{key}={spec}: block indices must be 0 … {num_layers - 1}" + ("" if spec else " (an empty list trains nothing)"))
    return sorted(set(spec))


def block_list(model: torch.nn.Module) -> torch.nn.ModuleList:
    """The model's transformer blocks: the ModuleList with ``config.num_hidden_layers`` entries."""
    n = model.config.num_hidden_layers
    for module in model.modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == n:
            return module
    raise UsageError(f"cannot find the {n} transformer blocks of {type(model).__name__}; use model.trainable_layers=all")


def freeze_all_but(model: torch.nn.Module, layers: list[int]) -> int:
    """Full fine-tuning of ``layers`` only: their parameters and those outside every block and
    outside the embeddings/LM head (the final norm) keep ``requires_grad``; the rest is frozen.
    Embeddings and the LM head are frozen because a tied head would pull the gradient back down
    to the input embedding, through every block. Returns the number of trainable parameters."""
    blocks = block_list(model)
    frozen = {id(p) for p in blocks.parameters()}
    for embedding in (model.get_input_embeddings(), model.get_output_embeddings()):
        if embedding is not None:
            frozen |= {id(p) for p in embedding.parameters()}
    keep = {id(p) for i in layers for p in blocks[i].parameters()}
    trainable = 0
    for p in model.parameters():
        p.requires_grad_(id(p) in keep or id(p) not in frozen)
        trainable += p.numel() if p.requires_grad else 0
    return trainable


def lora_targets(model: torch.nn.Module, layers: list[int], target_modules: str | list[str]) -> list[str]:
    """Full names of the linear modules inside ``layers`` that ``target_modules`` selects
    (PEFT's ``"all-linear"`` = every linear layer of those blocks), for ``LoraConfig``: PEFT's
    own ``layers_to_transform`` refuses ``"all-linear"``."""
    blocks = block_list(model)
    prefix = next(name for name, module in model.named_modules() if module is blocks)
    wanted = None if target_modules == "all-linear" else ({target_modules} if isinstance(target_modules, str) else set(target_modules))
    names = [
        f"{prefix}.{i}.{name}"
        for i in layers
        for name, module in blocks[i].named_modules()
        if isinstance(module, torch.nn.Linear) and (wanted is None or name.rsplit(".", 1)[-1] in wanted)
    ]
    if not names:
        raise UsageError(f"model.lora.target_modules={target_modules} selects no linear layer in blocks {layers}")
    return names
