"""Layer 3 — learning from rollouts: models, batching, losses, PaW, trainer, checkpoints, run log.

Imports ``pawkit.rollout`` and the plugin-author layer below it, never ``experiments`` or the CLI.
"""
