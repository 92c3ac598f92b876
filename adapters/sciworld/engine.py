"""One ScienceWorld JVM, started on demand and always reaped.

The simulator is a Scala jar driven over py4j. We keep the package's own launcher (it knows
the jar and the gateway handshake) but own the shutdown: a finalizer stops the JVM on
``close()``, on garbage collection and at interpreter exit, and kills it if it lingers, so
no ``java`` process outlives its env. (py4j also starts java with ``die_on_exit``: java
exits when our stdin pipe closes, which covers a killed Python.)
"""

from __future__ import annotations

import shutil
import subprocess
import time
import weakref
from typing import Any

JAVA_HINT = "sciworld needs java: apt-get install openjdk-17-jre-headless"
INSTALL_HINT = "needs scienceworld (pip install pawkit[sciworld])"
STEP_LIMIT = 10**9  # the package's own step limit is unused: the adapter counts turns itself


def java_missing() -> bool:
    return shutil.which("java") is None


def _stop(gateway: Any, process: subprocess.Popen, grace: float = 5.0) -> None:
    """Shut the gateway, then make sure the JVM is gone and reaped."""
    try:
        gateway.shutdown()
    except Exception:
        pass
    try:
        if process.poll() is None and process.stdin is not None:
            process.stdin.write(b"\n")  # py4j's die_on_exit watcher exits on stdin input/EOF
            process.stdin.flush()
            process.stdin.close()
    except Exception:
        pass
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class Engine:
    """A live simulator: ``sw`` is the package's ``ScienceWorldEnv``, ``server`` its raw JVM side."""

    def __init__(self) -> None:
        if java_missing():
            raise RuntimeError(JAVA_HINT)
        try:
            from scienceworld import ScienceWorldEnv
        except ImportError as exc:
            raise RuntimeError(f"sciworld {INSTALL_HINT}") from exc
        started = time.perf_counter()
        self.sw = ScienceWorldEnv("", envStepLimit=STEP_LIMIT)
        self.start_seconds = time.perf_counter() - started
        self.server = self.sw.server
        self.process: subprocess.Popen = self.sw._gateway.java_process
        self._join = self.sw._gateway.jvm.java.lang.String.join
        self._finalizer = weakref.finalize(self, _stop, self.sw._gateway, self.process)

    @property
    def pid(self) -> int:
        return self.process.pid

    def lines(self, java_list: Any) -> list[str]:
        """A Java list of strings in ONE py4j round trip (iterating it costs one per element)."""
        text = str(self._join("\n", java_list))
        return text.split("\n") if text else []

    def valid_actions(self) -> list[str]:
        """The engine's valid action-object combinations for the current state."""
        return self.lines(self.server.getValidActionObjectCombinations())

    def objects(self) -> list[str]:
        """The names of the objects the agent can currently refer to."""
        return self.lines(self.server.getPossibleObjects())

    def templates(self) -> list[str]:
        return self.lines(self.server.getPossibleActions())

    @property
    def alive(self) -> bool:
        return self._finalizer.alive and self.process.poll() is None

    def close(self) -> None:
        self._finalizer()
