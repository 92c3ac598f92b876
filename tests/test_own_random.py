"""pawkit/own_random.py: a private stream of the global ``random`` (textarena, ALFWorld's expert)."""

import random

import pytest

from pawkit.own_random import OwnRandom


def test_the_block_draws_from_its_own_stream_and_the_callers_comes_back():
    reference = random.Random(7)
    expected = [reference.random() for _ in range(4)]
    own = OwnRandom(7)
    random.seed(0)
    caller = random.getstate()
    with own.active():
        drawn = [random.random(), random.random()]
    assert random.getstate() == caller
    with own.active():
        drawn.append(random.random())  # the stream goes on where the last block left it
    with pytest.raises(KeyError):
        with own.active():
            drawn.append(random.random())
            raise KeyError("the env failed")
    assert random.getstate() == caller  # restored when the block raises too
    assert drawn == expected
