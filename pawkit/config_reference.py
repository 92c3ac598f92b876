"""The config's fields, described: ``pawkit config show --explain`` and docs/config-reference.md.

Regenerate the reference page with ``python -m pawkit.config_reference > docs/config-reference.md``
(a test checks it is current).
"""

from __future__ import annotations

import functools
import json
import sys
import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from pawkit.config import Config


def leaf_fields(model: type[BaseModel] = Config, prefix: str = "") -> list[tuple[str, type[BaseModel], Any]]:
    """(dotted key, owning section, pydantic FieldInfo) of every leaf field, in declaration order."""
    out = []
    for name, info in model.model_fields.items():
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
            out.extend(leaf_fields(info.annotation, f"{prefix}{name}."))
        else:
            out.append((prefix + name, model, info))
    return out


def explain(config: Config, sources: dict[str, str] | None = None) -> list[tuple[str, ...]]:
    """(dotted key, value as JSON/YAML, description) for every leaf of ``config``; given the
    ``sources`` of ``load_config_with_sources``, (key, value, source, description), the source
    being the label of the layer that set the key, or ``"default"``."""
    data = config.model_dump(mode="json")
    value = lambda key: functools.reduce(lambda node, part: node[part], key.split("."), data)  # noqa: E731
    if sources is None:
        return [(key, json.dumps(value(key), ensure_ascii=False), info.description or "") for key, _, info in leaf_fields()]
    return [(key, json.dumps(value(key), ensure_ascii=False), sources.get(key, "default"), info.description or "")
            for key, _, info in leaf_fields()]


def _type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is Annotated:  # a constrained member of a union: `str (matches ...)`
        base, *extra = get_args(annotation)
        notes = [note.replace("`", "") for info in extra if hasattr(info, "metadata") for note in _constraints(info)]
        return _type_name(base) + (f" ({', '.join(notes)})" if notes else "")
    if origin is list and any(get_origin(a) is Annotated for a in get_args(annotation)):
        return f"list[{', '.join(_type_name(a) for a in get_args(annotation))}]"
    if origin is Literal:
        return " | ".join(json.dumps(a) for a in get_args(annotation))
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in get_args(annotation))
    if annotation is type(None):
        return "null"
    if origin is not None:
        return str(annotation).replace("typing.", "")
    return annotation.__name__


def _constraints(info: Any) -> list[str]:
    symbols = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<", "pattern": "matches"}
    return [f"{symbol} `{getattr(item, attr)}`" if attr == "pattern" else f"{symbol} {getattr(item, attr)}"
            for item in info.metadata for attr, symbol in symbols.items() if getattr(item, attr, None) is not None]


def _cell(text: str, html: bool = False) -> str:
    """A markdown table cell; ``html`` text (not code) also escapes ``<`` so ``<think>`` shows."""
    return text.replace("|", "\\|").replace("<", "&lt;" if html else "<")


def reference_markdown() -> str:
    """docs/config-reference.md: every key with its default, type, constraints and description."""
    lines = [
        "# Configuration reference",
        "",
        "<!-- Generated from the field descriptions in pawkit/config.py; do not edit by hand.",
        "     Regenerate: python -m pawkit.config_reference > docs/config-reference.md -->",
        "",
        "Every key of a run's config, grouped by section. Set one in a YAML file (`configs/<env>.yaml`,",
        "`--config FILE`) or on the command line as a dotted override (`paw.rho=0.3`); later wins.",
        "`pawkit config show --env ENV --explain` prints the resolved value of every key, the file or flag that set it,",
        "and its description (precedence: writing-an-adapter.md#shipping-a-default-config).",
        "Symbols follow [paw.md](paw.md) (PaW) and the GiGPO and PPO papers.",
    ]
    sections: dict[str, list[tuple[str, Any]]] = {}
    owners: dict[str, type[BaseModel]] = {}
    for key, owners[key.rpartition(".")[0]], info in leaf_fields():
        sections.setdefault(key.rpartition(".")[0], []).append((key, info))
    for section, fields in sections.items():
        doc = (owners[section].__doc__ or "").strip().splitlines()[0]
        lines += ["", f"## {section or 'top level'}", "", doc, "", "| key | default | type | description |", "|---|---|---|---|"]
        for key, info in fields:
            default = info.get_default(call_default_factory=True)
            kind = ", ".join([f"`{_type_name(info.annotation)}`", *_constraints(info)])
            lines.append(f"| `{key}` | `{_cell(json.dumps(default, ensure_ascii=False))}` | {_cell(kind)} | {_cell(info.description or '', html=True)} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if sys.argv[1:] not in ([], ["--reference"]):
        sys.exit("usage: python -m pawkit.config_reference > docs/config-reference.md")
    sys.stdout.write(reference_markdown())
