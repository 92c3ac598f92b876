"""A private stream of Python's global ``random`` for libraries that draw from the global one.

Some environment libraries call ``random.choice`` / ``random.seed`` on the module-level generator
(textarena's games, ALFWorld's handcoded expert). Run inside :meth:`OwnRandom.active`, they draw
from this object's stream instead, and the caller's global state (a run's seeded stream, a user
plugin's draws) is exactly where it was on exit: playing an episode never moves it, and the
library replays the same draws for the same seed whatever else drew in between. No torch here:
env workers import it.
"""

from __future__ import annotations

import contextlib
import random
from typing import Iterator


class OwnRandom:
    """The state of one private global-``random`` stream; ``seed`` None starts from OS entropy."""

    def __init__(self, seed: int | None = None):
        self.state = random.Random(seed).getstate()

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """Swap this stream in as the global ``random`` for the block; the caller's comes back after,
        also when the block raises."""
        outer = random.getstate()
        random.setstate(self.state)
        try:
            yield
        finally:
            self.state = random.getstate()
            random.setstate(outer)
