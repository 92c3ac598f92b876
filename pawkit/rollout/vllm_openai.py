"""An OpenAI-compatible chat endpoint as a rollout engine, for evaluation only
(``pawkit eval --engine openai --base-url URL --model NAME``): a prompting baseline of any
served model — a local vLLM server, or a hosted API, the way verl-agent reports GPT-4o.

Such an endpoint takes and returns text, not token ids, and its tokenizer is not ours. The
engine's own tokenizer is therefore pawkit's byte tokenizer without a chat template: ``encode``
gives the prompt's UTF-8 bytes, ``sample`` decodes them back to exactly that text and sends it as
one user message to ``/v1/chat/completions``, and the reply text comes back as its bytes (plus
EOS), which the rollout decodes and parses as usual. No log-probs, no restriction: the command
turns ``rollout.constrained`` off so the prompt lists the admissible actions. The API key, if
any, is read from the environment variable named by ``--api-key-env`` (default OPENAI_API_KEY).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from pawkit.config import RolloutConfig
from pawkit.rollout.generate import Sampled
from pawkit.rollout.tokens import plain_ids
from pawkit.rollout.vllm_server import VllmServerError


class OpenAIEngine:
    """``sample(prompt ids, tries, temperature)`` through a chat endpoint; ``tries`` are ignored
    (a hosted model cannot be restricted token by token)."""

    def __init__(self, base_url: str, model: str, cfg: RolloutConfig, tokenizer, api_key: str | None = None, timeout: float = 300.0):
        """``tokenizer``: a byte-level one (pawkit.train.models.byte_tokenizer); its chat template is dropped."""
        self.base_url, self.model, self.cfg, self.api_key, self.timeout = base_url.rstrip("/"), model, cfg, api_key, timeout
        self.tokenizer = tokenizer
        self.tokenizer.chat_template = None
        self.requests = 0

    def encode(self, text: str) -> list[int]:
        return plain_ids(self.tokenizer, text)

    def template_parts(self) -> tuple[list[int], list[int]]:
        return [], []

    def sample(self, prompts: list[list[int]], tries, temperature: float) -> Sampled:
        eos = self.tokenizer.eos_token_id
        with ThreadPoolExecutor(max_workers=max(1, min(len(prompts), self.cfg.generation_batch_size))) as pool:
            texts = list(pool.map(lambda p: self._chat(self.tokenizer.decode(p), temperature), prompts))
        ids = [self.encode(t) + [eos] for t in texts]
        return Sampled(ids, [[0.0] * len(r) for r in ids], [None] * len(ids))

    def _chat(self, prompt: str, temperature: float) -> str:
        payload = {"model": self.model, "messages": [{"role": "user", "content": prompt}], "temperature": temperature,
                   "max_tokens": self.cfg.max_new_tokens}
        if temperature > 0 and self.cfg.top_p < 1:
            payload["top_p"] = self.cfg.top_p
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(f"{self.base_url}/chat/completions", data=json.dumps(payload).encode(), headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                answer = json.loads(r.read().decode())
        except urllib.error.HTTPError as exc:
            raise VllmServerError(f"{self.base_url}/chat/completions: HTTP {exc.code}: {exc.read().decode(errors='replace')[:300]}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise VllmServerError(f"{self.base_url}/chat/completions: {exc} (--base-url)") from None
        self.requests += 1
        return answer["choices"][0]["message"].get("content") or ""

