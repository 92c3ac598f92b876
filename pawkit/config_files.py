"""Reading config files and overrides: YAML that refuses duplicate keys, dotted ``key=value``
overrides parsed as YAML scalars, and the merge rule of config layers. Every problem is one
``ConfigError`` line naming the file or the key (re-exported by ``pawkit.config``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pawkit.protocol import UsageError


class ConfigError(UsageError):
    """A config problem; the message has one line per problem, each naming the key."""



def parse_overrides(overrides: list[str]) -> dict[str, Any]:
    """``["a.b=1", "c=x"]`` → nested dict; values are parsed as YAML scalars (``1`` → int)."""
    tree: dict[str, Any] = {}
    problems = []
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key or any(not part for part in key.split(".")):
            problems.append(f"malformed override {item!r}: expected key=value, e.g. trainer.steps=3")
            continue
        try:
            value = _load_yaml(raw) if raw != "" else ""
        except DuplicateKeyError as exc:
            problems.append(f"override {item!r}: {exc}")
            continue
        except yaml.YAMLError:
            value = raw
        node = tree
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                problems.append(f"override {item!r} conflicts with another override of '{part}'")
                break
        else:
            node[leaf] = value
    if problems:
        raise ConfigError("\n".join(problems))
    return tree


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``extra`` over ``base``: sections merge recursively, but ``env.options`` only one level
    deep (an option whose value is a mapping is replaced whole: it belongs to the adapter)."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key != "options":
            out[key] = _merge(out[key], value)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


class DuplicateKeyError(yaml.YAMLError):
    """A key given twice in one mapping: plain YAML keeps the last (a second ``trainer:`` drops the first)."""


def _no_duplicate_keys(node: yaml.Node | None, path: str = "") -> None:
    seen: dict[Any, int] = {}
    for key, value in node.value if isinstance(node, yaml.MappingNode) else ():
        if key.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor` may repeat keys on purpose
            continue
        name, line = (key.value if isinstance(key, yaml.ScalarNode) else id(key)), key.start_mark.line + 1
        if name in seen:
            raise DuplicateKeyError(f"key '{path}{name}' appears twice (lines {seen[name]} and {line}); give it once")
        seen[name] = line
        _no_duplicate_keys(value, f"{path}{name}.")
    for i, item in enumerate(node.value if isinstance(node, yaml.SequenceNode) else ()):
        _no_duplicate_keys(item, f"{path.rstrip('.')}[{i}].")


def _load_yaml(text: str) -> Any:
    """``yaml.safe_load`` that refuses a key given twice in one mapping, at any depth."""
    _no_duplicate_keys(yaml.compose(text, Loader=yaml.SafeLoader))
    return yaml.safe_load(text)


def read_yaml(path: Path, what: str = "config file", empty_ok: bool = True) -> dict[str, Any]:
    """A YAML mapping from ``path``; a missing file, a folder, an unreadable or non-UTF-8 file,
    bad YAML, a key given twice or a non-mapping is one ConfigError line."""
    try:
        data = _load_yaml(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{what} not found: {path}") from None
    except OSError as exc:  # a folder, no permission, ...
        why = "is a folder, not a YAML file" if isinstance(exc, IsADirectoryError) else f"cannot be read: {exc.strerror or exc}"
        raise ConfigError(f"{what} {path} {why}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what} {path} is not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    except DuplicateKeyError as exc:
        raise ConfigError(f"{what} {path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if data is None and empty_ok:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {path} must hold a mapping at the top level")
    return data
