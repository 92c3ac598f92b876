"""Plugin manager and the named registries built from the hooks in ``pawkit.hookspecs``."""

from __future__ import annotations

import difflib
import importlib.metadata
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import pluggy

from pawkit import hookspecs
from pawkit.protocol import UsageError

ENTRY_POINT_GROUP = "pawkit"

# registry kind -> hook name; the kinds are what users see in errors and `pawkit plugins`.
HOOKS = {
    "env": "register_envs",
    "selector": "register_selectors",
    "wm_loss": "register_wm_losses",
    "balancer": "register_balancers",
    "advantage_estimator": "register_advantage_estimators",
}


class PluginError(UsageError):
    """A name problem a user can fix: unknown name, duplicate registration."""


@dataclass(frozen=True)
class Registered:
    name: str
    obj: Any
    plugin: str
    description: str = ""
    check: Callable[[], str | None] | None = None

    def status(self) -> str:
        if self.check is None:
            return "ready"
        try:
            problem = self.check()
        except Exception as exc:  # a broken check must not break `pawkit envs`
            problem = f"check failed: {exc}"
        return problem or "ready"


@dataclass
class Registry:
    kind: str
    items: dict[str, Registered] = field(default_factory=dict)

    def add(self, entry: Registered) -> None:
        if entry.name in self.items:
            first = self.items[entry.name]
            raise PluginError(
                f"duplicate {self.kind} {entry.name!r}: registered by plugin {first.plugin!r} "
                f"and by plugin {entry.plugin!r}"
            )
        self.items[entry.name] = entry

    def get(self, name: str) -> Registered:
        try:
            return self.items[name]
        except KeyError:
            close = difflib.get_close_matches(name, self.items, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise PluginError(
                f"unknown {self.kind} {name!r}{hint}; available: {', '.join(sorted(self.items)) or 'none'}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self.items)

    def __iter__(self) -> Iterator[Registered]:
        return iter(self.items[n] for n in self.names())

    def __contains__(self, name: object) -> bool:
        return name in self.items


pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
pm.add_hookspecs(hookspecs)
_loaded = False
_registries: dict[str, Registry] = {}
# entry-point name -> one-line reason it could not be loaded (shown by `pawkit plugins`).
broken_plugins: dict[str, str] = {}


def load_plugins() -> None:
    """Load every plugin installed under the ``pawkit`` entry-point group (once).

    A plugin that fails to import is recorded in ``broken_plugins`` instead of taking every
    other plugin down with it.
    """
    global _loaded
    if _loaded:
        return
    _loaded = True
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
            continue
        try:
            pm.register(ep.load(), name=ep.name)
        except Exception as exc:
            broken_plugins[ep.name] = f"{type(exc).__name__}: {exc}".splitlines()[0]


def register_plugin(plugin: object, name: str | None = None) -> str:
    """Register a module or object with ``@hookimpl`` functions (notebooks, tests)."""
    load_plugins()
    plugin_name = pm.register(plugin, name=name)
    _registries.clear()
    return plugin_name


def unregister_plugin(name: str) -> None:
    pm.unregister(name=name)
    _registries.clear()


def registry(kind: str) -> Registry:
    """The registry of one kind, built by calling every plugin's hook with a ``register``."""
    if kind not in HOOKS:
        raise PluginError(f"unknown registry {kind!r}; available: {', '.join(HOOKS)}")
    load_plugins()
    if kind not in _registries:
        reg = Registry(kind)
        for impl in getattr(pm.hook, HOOKS[kind]).get_hookimpls():

            def register(name: str, obj: Any, *, description: str = "", check=None, _plugin=impl.plugin_name):
                doc = description or (getattr(obj, "__doc__", None) or "").strip().split("\n")[0]
                reg.add(Registered(name=name, obj=obj, plugin=_plugin, description=doc, check=check))

            impl.function(register=register)
        _registries[kind] = reg
    return _registries[kind]


def get(kind: str, name: str) -> Any:
    """The registered object; an unknown name raises PluginError listing the choices."""
    return registry(kind).get(name).obj
