"""pawkit's cache folder: ``$PAWKIT_CACHE``, default ``~/.cache/pawkit``.

Converted models (SmolLM2), generated data (WebShop catalogues, ALFWorld games) and measured
env facts (ScienceWorld splits and gold lengths) live here, each under its own sub-folder.
``cache_subdir`` is what a writer calls: an unwritable cache is one ``UsageError`` line naming
``PAWKIT_CACHE`` (exit 2), never an ``OSError`` traceback from deep inside a generator. No torch
here: adapters and env workers import it.
"""

from __future__ import annotations

import os
from pathlib import Path

from pawkit.protocol import UsageError


def cache_dir() -> Path:
    """The cache root: ``$PAWKIT_CACHE`` if set, else ``~/.cache/pawkit`` (not created)."""
    return Path(os.environ.get("PAWKIT_CACHE") or Path.home() / ".cache" / "pawkit").expanduser()


def cache_subdir(name: str) -> Path:
    """``cache_dir() / name``, created; a UsageError line if it cannot be (a file in the way,
    no permission, a read-only file system)."""
    path = cache_dir() / name
    try:
        path.mkdir(parents=True, exist_ok=True)
        if not os.access(path, os.W_OK | os.X_OK):
            raise PermissionError(f"{path} is not writable")
    except OSError as exc:
        why = exc.strerror or str(exc)
        raise UsageError(
            f"PAWKIT_CACHE={cache_dir()}: cannot write {path} ({why}); point PAWKIT_CACHE at a writable folder"
        ) from None
    return path
