"""pawkit: RL for multi-turn language agents, co-trained as world models (PaW)."""

__version__ = "0.1.0"
