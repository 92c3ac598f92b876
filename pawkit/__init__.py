"""pawkit: RL for multi-turn language agents, co-trained as world models (PaW).

The notebook and script API, imported on first use (``import pawkit`` imports no torch)::

    import pawkit
    pawkit.register_plugin(MyEnvs(), name="my-envs")  # running the cell again replaces it
    cfg = pawkit.load_config("my/env", overrides=["trainer.steps=2"])
    history = pawkit.train(cfg)                       # list of per-step metric dicts
    pawkit.unregister_plugin("my-envs")

``load_config`` / ``load_config_with_sources``: pawkit.config; ``register_plugin``,
``unregister_plugin``, ``hookimpl``: pawkit.plugins / pawkit.hookspecs; ``train``:
pawkit.train.trainer (torch); ``evaluate``: pawkit.train.evaluate (torch).
"""

import importlib
import sys
import types
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it; looked up by name so this package stays layer 0.
_API = {
    "load_config": "pawkit.config",
    "load_config_with_sources": "pawkit.config",
    "register_plugin": "pawkit.plugins",
    "unregister_plugin": "pawkit.plugins",
    "hookimpl": "pawkit.hookspecs",
    "UsageError": "pawkit.protocol",
    "train": "pawkit.train",  # the subpackage itself, made callable (_TrainPackage below)
    "evaluate": "pawkit.train.evaluate",
}
__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'pawkit' has no attribute {name!r}")
    if _API[name] == "pawkit.config":
        importlib.import_module("pawkit.plugins")  # so load_config finds the configs env plugins ship
    module = importlib.import_module(_API[name])
    return module if name == "train" else getattr(module, name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])



class _TrainPackage(types.ModuleType):
    """The subpackage ``pawkit.train``, callable: ``pawkit.train(config, ...)`` is
    ``pawkit.train.trainer.train(config, ...)`` (a package attribute named ``train`` is always
    the subpackage once it is imported, so the notebook API's ``train`` is the package itself)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return importlib.import_module("pawkit.train.trainer").train(*args, **kwargs)


class _Package(types.ModuleType):
    def __setattr__(self, name: str, value: Any) -> None:
        if name == "train" and type(value) is types.ModuleType:  # the import system binding the subpackage
            value.__class__ = _TrainPackage
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
