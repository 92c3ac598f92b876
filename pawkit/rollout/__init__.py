"""Layer 2 — playing episodes: env pool, prompts, parsing, constrained decoding, sampling, rollouts.

Imports only the plugin-author layer (``pawkit.protocol``, ``config``, ``plugins``, ...).
Nothing is re-exported here, so importing one module does not import torch for all of them.
"""
