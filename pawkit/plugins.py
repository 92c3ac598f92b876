"""Plugin manager and the named registries built from the hooks in ``pawkit.hookspecs``.

A plugin may register a real object or a lazy ``"module:attr"`` string; a string is imported
on first use (``Registered.obj``), so listing what is installed (``pawkit envs``,
``pawkit plugins``) imports no strategy or env code, and no torch. An env may also ship its
default config (``register(..., config=)``); ``pawkit.config.load_config`` finds it through
``env_config`` below, which this module installs there on import.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import inspect
import re
import sys
import types
from pathlib import Path
from typing import Any, Callable, Iterator

import pluggy

from pawkit import hookspecs
from pawkit.config import read_yaml, set_env_config_lookup
from pawkit.protocol import UsageError

ENTRY_POINT_GROUP = "pawkit"

# registry kind -> hook name; the kinds are what users see in errors and `pawkit plugins`.
HOOKS = {
    "env": "register_envs",
    "selector": "register_selectors",
    "wm_loss": "register_wm_losses",
    "balancer": "register_balancers",
    "wm_targets": "register_wm_targets",
    "rollout_engine": "register_rollout_engines",
    "advantage_estimator": "register_advantage_estimators",
}


class PluginError(UsageError):
    """A name problem a user can fix: unknown name, duplicate registration, unloadable plugin."""


_UNSET = object()


class Registered:
    """One registered name. ``obj`` is the object itself, imported on first access when the
    plugin registered a lazy ``"module:attr"`` string (then cached). ``config`` (envs only) is
    the default config the plugin ships: a YAML path (a relative one is relative to
    ``config_base``, the plugin module's folder), a mapping, or a ``"module:attr"`` naming one."""

    __slots__ = ("name", "plugin", "description", "check", "kind", "config", "config_base", "_ref", "_obj")

    def __init__(
        self,
        name: str,
        obj: Any,
        plugin: str,
        description: str = "",
        check: Callable[..., str | None] | None = None,
        kind: str = "",
        config: str | Path | dict[str, Any] | None = None,
        config_base: Path | None = None,
    ) -> None:
        self.name, self.plugin, self.description, self.check, self.kind = name, plugin, description, check, kind
        self.config, self.config_base = config, config_base
        self._ref = obj
        self._obj = _UNSET if isinstance(obj, str) else obj

    @property
    def target(self) -> str | None:
        """The lazy ``"module:attr"`` string this was registered as, or None for a real object."""
        return self._ref if isinstance(self._ref, str) else None

    @property
    def obj(self) -> Any:
        if self._obj is _UNSET:
            self._obj = resolve(self._ref, f"{self.kind or 'entry'} {self.name!r} of plugin {self.plugin!r}")
        return self._obj

    @property
    def check_takes_options(self) -> bool:
        """Whether the check declares an ``options`` parameter (opt-in, like hook arguments)."""
        try:
            return self.check is not None and "options" in inspect.signature(self.check).parameters
        except (TypeError, ValueError):  # no signature to read (a builtin): called bare
            return False

    def status(self, options: dict[str, Any] | None = None) -> str:
        """"ready", or the check's one-line reason this cannot run here. A check that declares
        an ``options`` parameter gets ``options`` (the env's ``env.options``; {} if None)."""
        if self.check is None:
            return "ready"
        try:
            problem = self.check(options=dict(options or {})) if self.check_takes_options else self.check()
        except Exception as exc:  # a broken check must not break `pawkit envs`
            problem = f"check failed: {exc}"
        if problem is not None and not isinstance(problem, str):
            problem = f"check returned {type(problem).__name__} {problem!r}, not a str reason or None"
        return problem or "ready"

    def defaults(self) -> tuple[str, dict[str, Any]] | None:
        """(source label, data) of the shipped config, read now; None when there is none. A
        missing or bad file is one ConfigError line, an unloadable reference one PluginError."""
        config, what = self.config, f"config of env {self.name!r} (plugin {self.plugin!r})"
        if config is None:
            return None
        if isinstance(config, str) and re.fullmatch(r"[\w.]+:[\w.]+", config):
            config = resolve(config, what)
            if not isinstance(config, (dict, str, Path)):
                raise PluginError(f"{what} {self.config!r} is a {type(config).__name__}, not a mapping or a path")
        if isinstance(config, dict):
            return f"env config (plugin {self.plugin!r})", dict(config)
        path = Path(config).expanduser()
        if not path.is_absolute():
            if self.config_base is None:
                raise PluginError(f"{what}: relative path {str(config)!r} but the plugin has no module folder; give an absolute path")
            path = self.config_base / path
        return f"env config {path}", read_yaml(path, what)

    def __repr__(self) -> str:
        return f"Registered(name={self.name!r}, obj={self._ref!r}, plugin={self.plugin!r})"


def plugin_folder(plugin: object) -> Path | None:
    """The folder of the module that defines ``plugin`` (a module, or an object of a class), if it is a file."""
    module = plugin if isinstance(plugin, types.ModuleType) else sys.modules.get(getattr(plugin, "__module__", None) or "")
    file = getattr(module, "__file__", None)
    return Path(file).resolve().parent if file else None


def resolve(target: str, what: str) -> Any:
    """Import ``"package.module:attr.sub"``; any failure is one PluginError line naming ``what``."""
    module_name, sep, attr = target.partition(":")
    try:
        if not (sep and module_name and attr):
            raise ValueError("not a 'module:attr' reference")
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
        raise PluginError(f"cannot load {what} from {target!r}: {reason}") from exc
    return obj


class Registry:
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.items: dict[str, Registered] = {}

    def add(self, entry: Registered) -> None:
        if entry.name in self.items:
            first = self.items[entry.name]
            raise PluginError(
                f"duplicate {self.kind} {entry.name!r}: registered by plugin {first.plugin!r} "
                f"and by plugin {entry.plugin!r}"
            )
        self.items[entry.name] = entry

    def get(self, name: str) -> Registered:
        """The entry (its ``.obj`` imports a lazy one); an unknown name lists the choices."""
        try:
            return self.items[name]
        except KeyError:
            close = difflib.get_close_matches(name, self.items, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            broken = "".join(f"; plugin {p!r} failed to load ({why})" for p, why in broken_plugins.items())  # maybe it was there
            raise PluginError(
                f"unknown {self.kind} {name!r}{hint}; available: {', '.join(sorted(self.items)) or 'none'}{broken}"
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
# plugin name -> one-line reason it could not be loaded (shown by `pawkit plugins`).
broken_plugins: dict[str, str] = {}


def _unknown_hooks(plugin: object) -> list[str]:
    """Names of ``plugin``'s hook implementations that match no hookspec (typos)."""
    return sorted(
        name
        for name, caller in vars(pm.hook).items()
        if not name.startswith("_")
        and not caller.has_spec()
        and any(impl.plugin is plugin and not impl.optionalhook for impl in caller.get_hookimpls())
    )


def _drop_invalid_plugins() -> list[str]:
    """``pm.check_pending()`` until clean: each plugin with an unknown hook is unregistered and
    recorded in ``broken_plugins``. Returns the names dropped."""
    dropped = []
    while True:
        try:
            pm.check_pending()
            return dropped
        except pluggy.PluginValidationError as exc:
            name = pm.get_name(exc.plugin) or repr(exc.plugin)
            unknown = _unknown_hooks(exc.plugin)
            specs = [n for n, caller in vars(pm.hook).items() if not n.startswith("_") and caller.has_spec()]
            hints = [f"did you mean {m[0]!r}?" for h in unknown if (m := difflib.get_close_matches(h, specs, n=1))]
            hint = f" ({'; '.join(hints)})" if hints else ""
            listed = ", ".join(repr(h) for h in unknown) or str(exc)
            broken_plugins[name] = f"unknown hook {listed}{hint}; the plugin was not loaded"
            pm.unregister(exc.plugin)
            dropped.append(name)


def load_plugins() -> None:
    """Load every plugin installed under the ``pawkit`` entry-point group (once).

    A plugin that fails to import, or implements a hook that ``pawkit.hookspecs`` does not
    declare (a typo), is recorded in ``broken_plugins`` instead of taking every other plugin
    down with it.
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
    _drop_invalid_plugins()
    _registries.clear()


def register_plugin(plugin: object, name: str | None = None) -> str:
    """Register a module or object with ``@hookimpl`` functions (notebooks, tests); returns its name.

    Idempotent: the same object again is a no-op, and a new object under a name already
    registered replaces that plugin (re-running a notebook cell works). Pass ``name``: without
    one pluggy names the object by its id, so a re-run would register its names twice.
    An invalid plugin (e.g. a misspelt hook name) is recorded in ``broken_plugins``, left
    unregistered, and reported as a PluginError.
    """
    if name is not None and not (isinstance(name, str) and name):
        raise PluginError(f"register_plugin: name must be a non-empty str, got {name!r}")
    if not any(hasattr(getattr(plugin, attr, None), f"{ENTRY_POINT_GROUP}_impl") for attr in dir(plugin)):
        raise PluginError(f"register_plugin: {plugin!r} has no @hookimpl function (e.g. register_envs), so it is no pawkit plugin")
    load_plugins()
    if (same := pm.get_name(plugin)) is not None and name in (None, same):
        return same  # this very object again: nothing to do
    if name is not None and pm.get_plugin(name) is not None:
        unregister_plugin(name)  # a notebook cell run again: the new definition replaces the old
    if same is not None:
        unregister_plugin(same)  # the same object under a new name
    try:
        plugin_name = pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:
        raise PluginError(str(exc).splitlines()[0]) from exc
    _registries.clear()
    if plugin_name in _drop_invalid_plugins():
        raise PluginError(f"plugin {plugin_name!r}: {broken_plugins[plugin_name]}")
    broken_plugins.pop(plugin_name, None)
    return plugin_name


def unregister_plugin(name: str) -> None:
    """Remove the plugin registered as ``name`` and what it registered; an unknown name is a no-op."""
    pm.unregister(name=name)
    _registries.clear()


def call_hookimpl(impl: pluggy.HookImpl, **available: Any) -> Any:
    """Call one hook implementation with the arguments it declares (pluggy's opt-in rule), so a
    hookspec can gain arguments without breaking plugins written against the older one."""
    return impl.function(**{arg: available[arg] for arg in impl.argnames})


def registry(kind: str) -> Registry:
    """The registry of one kind, built by calling every plugin's hook with a ``register``."""
    if kind not in HOOKS:
        raise PluginError(f"unknown registry {kind!r}; available: {', '.join(HOOKS)}")
    load_plugins()
    if kind not in _registries:
        reg = Registry(kind)
        for impl in getattr(pm.hook, HOOKS[kind]).get_hookimpls():

            def register(name: str, obj: Any, *, description: str = "", check=None, config=None, _impl=impl):
                if config is not None and kind != "env":
                    raise PluginError(f"plugin {_impl.plugin_name!r}: config= is for envs, not for {kind} {name!r}")
                if not description and not isinstance(obj, str):
                    description = (getattr(obj, "__doc__", None) or "").strip().split("\n")[0]
                reg.add(Registered(name, obj, _impl.plugin_name, description=description, check=check, kind=kind,
                                   config=config, config_base=plugin_folder(_impl.plugin) if config is not None else None))

            call_hookimpl(impl, register=register)
        _registries[kind] = reg
    return _registries[kind]


def get(kind: str, name: str) -> Any:
    """The registered object (imported now if it was registered lazily); an unknown name
    raises PluginError listing the choices."""
    return registry(kind).get(name).obj


def env_config(name: str) -> tuple[str, dict[str, Any]] | None:
    """(label, data) of the config that env ``name``'s plugin ships; None for none or an unknown name."""
    reg = registry("env")
    return reg.get(name).defaults() if name in reg else None


set_env_config_lookup(env_config)
