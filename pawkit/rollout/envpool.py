"""Batched env execution: one env per slot, in-process or spread over worker processes.

Real engines (ALFWorld, ScienceWorld) step at ~10/s and reset in ~1 s, so a rollout of
hundreds of episodes needs them to run concurrently. Workers are separate processes because
those engines hold the GIL (or a JVM) and can hang or crash; a failure comes back as the
exception *value* of that one request and never takes the pool down. Everything here is
env-agnostic: workers build their envs through the plugin registry by name.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import sys
import time
import traceback
import types
import weakref
from abc import ABC, abstractmethod
from typing import Any, Callable, Sequence

from pawkit import plugins
from pawkit.protocol import Env, Observation, StepResult, Task, UsageError
from pawkit.rollout.env_factory import build_env  # noqa: F401 (callers import it from here too)

ResetRequest = tuple[int, "Task | None", "int | None"]
StepRequest = tuple[int, str]


class SlotNotReset(RuntimeError):
    """A step on a slot with no live episode (never reset, or its worker was restarted)."""


class _Slots:
    """The envs of some slots, built lazily; shared by the local pool and every worker."""

    def __init__(self, factory: Callable[[], Env]):
        self.factory = factory
        self.envs: dict[int, Env] = {}
        self.live: set[int] = set()

    def env(self, slot: int) -> Env:
        if slot not in self.envs:
            self.envs[slot] = self.factory()
        return self.envs[slot]

    def call(self, method: str, slot: int, args: tuple) -> Any:
        if method == "reset":
            self.live.discard(slot)
            observation = self.env(slot).reset(*args)
            self.live.add(slot)
            return observation
        if slot not in self.live:
            raise SlotNotReset(f"slot {slot} has no running episode: reset it first")
        if method == "step":
            return self.env(slot).step(*args)
        if method == "expert_action":
            return self.env(slot).expert_action()
        raise ValueError(f"unknown pool method {method!r}")

    def close(self) -> None:
        for env in self.envs.values():
            with contextlib.suppress(Exception):
                env.close()
        self.envs.clear()
        self.live.clear()


class EnvPool(ABC):
    """``n_slots`` independent envs addressed by slot index; calls are batched over slots.

    Every batched call returns one entry per request, in request order: the result, or the
    exception that request raised (a broken env never breaks the batch).
    """

    n_slots: int

    def _check(self, slots: Sequence[int]) -> None:
        for slot in slots:
            if not 0 <= slot < self.n_slots:
                raise ValueError(f"slot {slot} out of range: the pool has {self.n_slots} slots (0..{self.n_slots - 1})")

    def reset(self, requests: Sequence[ResetRequest]) -> list[Observation | BaseException]:
        self._check([r[0] for r in requests])
        return self._run("reset", [(slot, (task, seed)) for slot, task, seed in requests])

    def step(self, requests: Sequence[StepRequest]) -> list[StepResult | BaseException]:
        self._check([r[0] for r in requests])
        return self._run("step", [(slot, (command,)) for slot, command in requests])

    def expert_action(self, slots: Sequence[int]) -> list[str | BaseException]:
        self._check(slots)
        return self._run("expert_action", [(slot, ()) for slot in slots])

    @abstractmethod
    def _run(self, method: str, requests: list[tuple[int, tuple]]) -> list[Any]: ...

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> "EnvPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LocalEnvPool(EnvPool):
    """All slots in this process, run one after another (no timeout: a hung step hangs)."""

    def __init__(self, env_name: str, options: dict[str, Any], n_slots: int):
        factory = plugins.get("env", env_name)
        self.n_slots = n_slots
        self._slots = _Slots(lambda: factory(**options))

    def _run(self, method: str, requests: list[tuple[int, tuple]]) -> list[Any]:
        results: list[Any] = []
        for slot, args in requests:
            try:
                results.append(self._slots.call(method, slot, args))
            except Exception as exc:
                results.append(exc)
        return results

    def close(self) -> None:
        self._slots.close()


# ------------------------------------------------------------------ worker processes


def _portable(exc: BaseException) -> BaseException:
    """The exception itself if it survives pickling, else a RuntimeError carrying its text."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def _worker_main(conn, env_name: str, options: dict[str, Any], extra_plugins: list[tuple[str, Any]]) -> None:
    """Serve requests until told to stop or the parent goes away (EOF on the pipe)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    for name, plugin in extra_plugins:
        if isinstance(plugin, str):
            plugin = importlib.import_module(plugin)
        if plugins.pm.get_plugin(name) is None:
            plugins.register_plugin(plugin, name=name)
    factory = plugins.get("env", env_name)
    slots = _Slots(lambda: factory(**options))
    conn.send("ready")  # request timeouts start counting only after imports are done
    try:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                return
            if message is None:
                return
            method, requests = message
            for slot, args in requests:
                try:
                    value: Any = slots.call(method, slot, args)
                except Exception as exc:
                    if hasattr(exc, "add_note"):  # the worker's traceback, for --debug readers
                        exc.add_note("".join(traceback.format_exception(exc)).rstrip())
                    value = _portable(exc)
                try:
                    conn.send(value)
                except (EOFError, OSError, BrokenPipeError):
                    return
                except Exception as exc:  # an unpicklable result
                    conn.send(RuntimeError(f"{method} result of slot {slot} cannot be sent: {exc}"))
    finally:
        slots.close()


def _main_file() -> str | None:
    """What a spawned worker re-runs as ``__main__``: a file or -m module; "" none (notebook, REPL, -c); None it cannot (stdin)."""
    main = sys.modules.get("__main__")
    file = getattr(main, "__file__", None) or ""
    return getattr(getattr(main, "__spec__", None), "name", None) or (file if not file or os.path.isfile(file) else None)


def _programmatic_plugins() -> tuple[list[tuple[str, Any]], dict[str, str]]:
    """Plugins registered in code (not via entry points), in a form a spawned worker can load, and
    why each of the others cannot reach one (name → reason); a stdin ``__main__`` is a UsageError."""
    plugins.load_plugins()
    from_entry_points = {ep.name for ep in importlib.metadata.entry_points(group=plugins.ENTRY_POINT_GROUP)}
    if (main_ok := _main_file()) is None:
        raise UsageError(f"env worker processes cannot start from a script read from stdin: each one re-runs "
                         f"__main__ ({sys.modules['__main__'].__file__}); run the script from a file, or set rollout.num_workers=0")
    found: list[tuple[str, Any]] = []
    unsendable: dict[str, str] = {}
    for name, plugin in plugins.pm.list_name_plugin():
        module = plugin.__name__ if isinstance(plugin, types.ModuleType) else getattr(plugin, "__module__", None)
        if name in from_entry_points or plugin is None:
            continue
        if module == "__main__" and not main_ok:
            unsendable[name] = "it is defined in __main__ (a notebook, the REPL, python -c or stdin), which a spawned worker cannot import"
            continue
        try:
            found.append((name, module if isinstance(plugin, types.ModuleType) else pickle.dumps(plugin) and plugin))
        except Exception as exc:
            unsendable[name] = f"it cannot be pickled for a spawned worker ({type(exc).__name__}: {exc})".splitlines()[0]
    return found, unsendable


STARTUP_TIMEOUT = 300.0  # seconds a fresh worker may take to import pawkit and the plugins


class _Worker:
    def __init__(self, ctx, args: tuple):
        self.ctx, self.args = ctx, args
        self.start()

    def start(self) -> None:
        parent, child = self.ctx.Pipe(duplex=True)
        self.process = self.ctx.Process(target=_worker_main, args=(child, *self.args), daemon=True)
        self.process.start()
        child.close()
        self.conn = parent
        self.ready = False

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT) -> bool:
        """Consume the worker's start-up message; False if it died or never got there."""
        if not self.ready:
            try:
                self.ready = self.conn.poll(timeout) and self.conn.recv() == "ready"
            except (EOFError, OSError):
                return False
        return self.ready

    def stop(self, grace: float = 2.0) -> None:
        """Ask nicely, then terminate, then kill; always reap (no zombies, no orphans)."""
        process = self.process
        try:
            self.conn.send(None)
        except Exception:
            pass
        process.join(grace)
        if process.is_alive():
            process.terminate()
            process.join(grace)
        if process.is_alive():
            process.kill()
            process.join()
        self.conn.close()

    def restart(self) -> None:
        self.process.kill()
        self.process.join()
        self.conn.close()
        self.start()


def _shutdown(workers: list[_Worker]) -> None:
    for worker in workers:
        with contextlib.suppress(Exception):
            worker.stop()
    workers.clear()


class ProcessEnvPool(EnvPool):
    """Slots spread round-robin over ``num_workers`` spawned processes, run concurrently.

    A request slower than its timeout returns ``TimeoutError``; its worker is killed and
    restarted, so every slot of that worker needs a new ``reset`` (a step on one returns
    ``SlotNotReset``). Workers stop on ``close()``, on garbage collection, at interpreter
    exit, and by themselves when the parent process disappears.
    """

    def __init__(self, env_name: str, options: dict[str, Any], n_slots: int, num_workers: int,
                 step_timeout: float | None = None, reset_timeout: float | None = None):
        plugin = plugins.registry("env").get(env_name).plugin  # fail here, with the list of names, not in every worker
        extra, unsendable = _programmatic_plugins()
        if plugin in unsendable:
            raise UsageError(f"environment {env_name!r} of plugin {plugin!r} cannot run in env worker processes: "
                             f"{unsendable[plugin]}; put the plugin in an importable module (a .py file you import), "
                             "or set rollout.num_workers=0")
        self.n_slots = n_slots
        self.step_timeout = step_timeout
        self.reset_timeout = reset_timeout if reset_timeout is not None else step_timeout
        ctx = multiprocessing.get_context("spawn")
        args = (env_name, dict(options), extra)
        self._workers: list[_Worker] = []
        self._finalizer = weakref.finalize(self, _shutdown, self._workers)
        for _ in range(max(1, min(num_workers, n_slots))):
            self._workers.append(_Worker(ctx, args))

    @property
    def pids(self) -> list[int]:
        return [w.process.pid for w in self._workers]

    def worker_of(self, slot: int) -> int:
        return slot % len(self._workers)

    def _run(self, method: str, requests: list[tuple[int, tuple]]) -> list[Any]:
        if not self._workers:
            raise RuntimeError("the env pool is closed")
        timeout = self.reset_timeout if method == "reset" else self.step_timeout
        results: list[Any] = [None] * len(requests)
        pending: dict[int, list[int]] = {}
        for position, (slot, _) in enumerate(requests):
            pending.setdefault(self.worker_of(slot), []).append(position)
        deadline: dict[int, float | None] = {}
        try:
            for w in list(pending):
                if not self._workers[w].wait_ready():
                    self._fail(w, pending, results, requests, RuntimeError, "env worker failed to start")
                    continue
                try:
                    self._workers[w].conn.send((method, [requests[p] for p in pending[w]]))
                except (OSError, ValueError):
                    self._fail(w, pending, results, requests, RuntimeError, "env worker was gone")
                    continue
                deadline[w] = time.monotonic() + timeout if timeout else None
            self._collect(method, timeout, requests, pending, deadline, results)
        except BaseException:  # e.g. Ctrl-C: answers still in flight would desynchronise the pipes
            for w in list(pending):
                self._workers[w].restart()
            raise
        return results

    def _collect(self, method, timeout, requests, pending, deadline, results) -> None:
        while pending:
            soonest = min((d for d in deadline.values() if d is not None), default=None)
            wait = None if soonest is None else max(0.0, soonest - time.monotonic())
            by_conn = {self._workers[w].conn: w for w in pending}
            for conn in multiprocessing.connection.wait(list(by_conn), timeout=wait):
                w = by_conn[conn]
                try:
                    value = conn.recv()
                except (EOFError, OSError):
                    self._workers[w].process.join(5)  # EOF means it is exiting: collect its exit code
                    code = self._workers[w].process.exitcode
                    self._fail(w, pending, results, requests, RuntimeError, f"env worker died (exit code {code})")
                    deadline.pop(w)
                    continue
                results[pending[w].pop(0)] = value
                if pending[w]:
                    deadline[w] = time.monotonic() + timeout if timeout else None
                else:
                    del pending[w], deadline[w]
            now = time.monotonic()
            for w in [w for w, d in deadline.items() if d is not None and d <= now]:
                self._fail(w, pending, results, requests, TimeoutError, f"{method} took longer than {timeout}s")
                deadline.pop(w)

    def _fail(self, w: int, pending, results, requests, kind: type[BaseException], why: str) -> None:
        """Restart worker ``w``; its unanswered requests get ``kind`` (first) or RuntimeError."""
        positions = pending.pop(w)
        slot = requests[positions[0]][0]
        results[positions[0]] = kind(f"slot {slot}: {why}; its worker was restarted, reset its slots")
        for p in positions[1:]:
            results[p] = RuntimeError(
                f"slot {requests[p][0]}: not run, its worker was restarted after a failure on slot {slot}; reset it"
            )
        self._workers[w].restart()

    def close(self) -> None:
        self._finalizer()  # also runs at interpreter exit and on garbage collection


def make_env_pool(env_name: str, options: dict[str, Any], n_slots: int, num_workers: int = 0,
                  step_timeout: float | None = None, reset_timeout: float | None = None) -> EnvPool:
    """An in-process pool when ``num_workers`` is 0, else a pool of worker processes.

    ``step_timeout`` bounds one step (worker pools only); ``reset_timeout`` bounds one reset
    and defaults to ``step_timeout``.
    """
    if n_slots < 1:
        raise ValueError(f"n_slots must be >= 1, got {n_slots}")
    if num_workers < 0:
        raise ValueError(f"num_workers must be >= 0 (0 = in-process), got {num_workers}")
    if num_workers == 0:
        return LocalEnvPool(env_name, options, n_slots)
    return ProcessEnvPool(env_name, options, n_slots, num_workers, step_timeout, reset_timeout)
