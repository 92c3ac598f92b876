"""Constrained decoding: a token trie over the admissible actions of one state.

The same trie later tells the trainer which ids were allowed at each response position, so
training log-probs are computed under the same restriction and the PPO ratio stays honest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from pawkit.rollout.parsing import render_action
from pawkit.rollout.tokens import plain_ids


@dataclass
class ActionTrie:
    root: dict = field(default_factory=dict)

    @classmethod
    def build(cls, tokenizer, actions: Sequence[str], output_format: str) -> "ActionTrie":
        trie = cls()
        for action in dict.fromkeys(actions):
            ids = plain_ids(tokenizer, render_action(action, output_format))
            node = trie.root
            for token in [*ids, tokenizer.eos_token_id]:
                node = node.setdefault(token, {})
        return trie

    def allowed(self, prefix: Sequence[int]) -> list[int]:
        """Ids that may follow ``prefix``; empty once the prefix leaves the trie or ends."""
        node = self.root
        for token in prefix:
            node = node.get(token)
            if node is None:
                return []
        return list(node)

    def allowed_per_position(self, response: Sequence[int]) -> list[list[int]]:
        return [self.allowed(response[:k]) for k in range(len(response))]
