"""The env pool: batched calls, errors as values, timeouts, worker restarts, clean shutdown.

The env below is registered programmatically; spawned workers re-import this module by name
to find it, exactly as they would a third-party plugin registered in code.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pawkit import plugins
from pawkit.rollout.envpool import LocalEnvPool, ProcessEnvPool, SlotNotReset, make_env_pool
from pawkit.hookspecs import hookimpl
from pawkit.protocol import Env, Observation, StepResult, Task


class CounterEnv(Env):
    """Counts 'inc' commands; 'boom' raises, 'hang' blocks forever, 'die' kills the process."""

    name = "pooltest"

    def __init__(self, rendezvous: str | None = None, parties: int = 2):
        self.count = 0
        self.rendezvous = rendezvous
        self.parties = parties

    def reset(self, task: Task | None = None, seed: int | None = None) -> Observation:
        self.count = seed or 0
        return Observation(text=f"count {self.count}", admissible_actions=["inc"], info={"pid": os.getpid()})

    def step(self, command: str) -> StepResult:
        if command == "boom":
            raise ValueError(f"boom at {self.count}")
        if command == "hang":
            threading.Event().wait()
        if command == "die":
            os._exit(3)
        if command.startswith("meet "):  # returns only once every party has arrived
            folder = Path(self.rendezvous)
            (folder / command.split()[1]).touch()
            while len(list(folder.iterdir())) < self.parties:
                time.sleep(0.01)
        elif command == "inc":
            self.count += 1
        text = f"count {self.count}"
        return StepResult(observation=Observation(text=text, info={"pid": os.getpid()}), done=self.count >= 3)

    def expert_action(self) -> str:
        return "inc"


@hookimpl
def register_envs(register):
    register("pooltest", CounterEnv, description="test-only counter env")


@pytest.fixture(scope="module", autouse=True)
def _plugin():
    name = plugins.register_plugin(sys.modules[__name__], name="pooltest-plugin")
    yield
    plugins.unregister_plugin(name)


def _alive(pid: int) -> bool:
    """True for a running process; a zombie (exited, not yet reaped) counts as gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_local_pool_batches_and_returns_errors_as_values():
    with make_env_pool("pooltest", {}, 3) as pool:
        assert isinstance(pool, LocalEnvPool)
        obs = pool.reset([(0, None, 0), (2, Task(id="t"), 1)])
        assert [o.text for o in obs] == ["count 0", "count 1"]
        results = pool.step([(2, "inc"), (0, "boom"), (1, "inc")])
        assert results[0].observation.text == "count 2"
        assert isinstance(results[1], ValueError) and str(results[1]) == "boom at 0"
        assert isinstance(results[2], SlotNotReset)
        assert pool.expert_action([0, 2]) == ["inc", "inc"]
        assert pool.step([(2, "inc")])[0].done is True


def test_bad_arguments_are_one_line_errors():
    with pytest.raises(ValueError, match="slot 5 out of range: the pool has 2 slots"):
        make_env_pool("pooltest", {}, 2).step([(5, "inc")])
    with pytest.raises(ValueError, match="num_workers must be >= 0"):
        make_env_pool("pooltest", {}, 2, num_workers=-1)
    with pytest.raises(plugins.PluginError, match="unknown env 'pooltst'"):
        make_env_pool("pooltest".replace("te", "t", 1), {}, 2, num_workers=1)


def test_workers_share_slots_errors_timeouts_and_crashes(tmp_path):
    with make_env_pool("pooltest", {"rendezvous": str(tmp_path)}, 4, num_workers=2, step_timeout=5) as pool:
        assert isinstance(pool, ProcessEnvPool)
        pids = pool.pids
        obs = pool.reset([(s, None, s) for s in range(4)])
        assert [o.text for o in obs] == ["count 0", "count 1", "count 2", "count 3"]
        assert [o.info["pid"] for o in obs] == [pids[0], pids[1], pids[0], pids[1]]

        # Both workers must be inside a step at the same time, or neither returns.
        met = pool.step([(0, "meet a"), (1, "meet b")])
        assert [r.observation.text for r in met] == ["count 0", "count 1"]

        results = pool.step([(0, "inc"), (1, "boom"), (2, "inc"), (3, "inc")])
        assert isinstance(results[1], ValueError) and str(results[1]) == "boom at 1"
        assert [results[i].observation.text for i in (0, 2, 3)] == ["count 1", "count 3", "count 4"]
        assert pool.expert_action([0, 1]) == ["inc", "inc"]

        # Worker 1 hangs: slot 1 times out, slot 3 (same worker, queued) is not run, worker 0 unaffected.
        pool.step_timeout = 0.5
        results = pool.step([(1, "hang"), (0, "inc"), (3, "inc")])
        assert isinstance(results[0], TimeoutError)
        assert str(results[0]) == "slot 1: step took longer than 0.5s; its worker was restarted, reset its slots"
        assert results[1].observation.text == "count 2"
        assert isinstance(results[2], RuntimeError) and "not run" in str(results[2])
        assert not _alive(pids[1]) and pool.pids[1] != pids[1]
        assert isinstance(pool.step([(3, "inc")])[0], SlotNotReset)
        assert pool.reset([(3, None, 7)])[0].text == "count 7"

        # A worker that dies is replaced too; the other worker keeps its episodes.
        pool.step_timeout = 5
        results = pool.step([(2, "die"), (1, "inc")])
        assert isinstance(results[0], RuntimeError) and str(results[0]).startswith("slot 2: env worker died (exit code 3)")
        assert isinstance(results[1], SlotNotReset)
        assert pool.step([(3, "inc")])[0].observation.text == "count 8"
        workers = pool.pids
    assert not any(_alive(pid) for pid in workers + pids)


SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from pawkit import plugins
import test_envpool
plugins.register_plugin(test_envpool, name="pooltest-plugin")
from pawkit.rollout.envpool import make_env_pool
pool = make_env_pool("pooltest", {{}}, 2, num_workers=2)
print(*pool.pids, flush=True)
pool.reset([(0, None, 0), (1, None, 0)])
{ending}
"""


@pytest.mark.parametrize("ending", ["raise KeyboardInterrupt", "pass", "import os; os._exit(0)"])
def test_no_orphans_after_interrupt_exit_or_hard_exit(ending):
    """Ctrl-C and plain exit run the finalizer; a hard exit leaves workers to see EOF and quit."""
    script = SCRIPT.format(tests=str(Path(__file__).parent), ending=ending)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    pids = [int(p) for p in proc.stdout.split()]
    assert len(pids) == 2, proc.stderr
    if ending.startswith("import os"):
        # Orphans notice the closed pipe on their own; wait for that, bounded.
        deadline = time.monotonic() + 30
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
    assert [_alive(p) for p in pids] == [False, False]


def test_gridnav_through_workers_matches_local():
    if "gridnav" not in plugins.registry("env"):
        pytest.skip("gridnav adapter not installed")
    with make_env_pool("gridnav", {}, 2) as local, make_env_pool("gridnav", {}, 2, num_workers=2) as remote:
        a = local.reset([(0, None, 3), (1, None, 4)])
        b = remote.reset([(0, None, 3), (1, None, 4)])
        assert [o.text for o in a] == [o.text for o in b]
        for _ in range(3):
            moves = local.expert_action([0, 1])
            assert [_plain(m) for m in remote.expert_action([0, 1])] == [_plain(m) for m in moves]
            requests = [(i, m) for i, m in enumerate(moves) if isinstance(m, str)]
            assert [_plain(r) for r in local.step(requests)] == [_plain(r) for r in remote.step(requests)]


def _plain(value):
    if isinstance(value, BaseException):
        return (type(value).__name__, str(value))
    return value.model_dump() if hasattr(value, "model_dump") else value
