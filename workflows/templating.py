"""Safe substitution in playbook arguments: `${alert.labels.service}`, `${params.replicas}`,
`${steps.probe.status}`, `${steps.history.revisions.-1.changed_at}` (list items by number, negative
from the end), `${diagnosis.confidence}`, `${incident.id}`.

Substitution only: a reference is a dotted path into known data, never an expression, and values
are inserted once (a substituted value that itself contains `${...}` is not expanded again). `$${`
writes a literal `${`. The syntax stays clear of Jinja's `{{ }}`, which Ansible playbooks use and which
passes through untouched.

A string that is exactly one reference keeps the referenced value's type (a number stays a number);
a reference inside longer text must name a scalar.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from types import UnionType
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel

_TOKEN = re.compile(r"\$\$\{|\$\{([^{}]*)\}|\$\{")
_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_-]+)*$")
Loc = tuple[str | int, ...]


class TemplateError(ValueError):
    """A template that is malformed, or that refers to something that does not exist."""


@dataclass(frozen=True)
class Reference:
    path: tuple[str, ...]

    @property
    def text(self) -> str:
        return ".".join(self.path)


def _parse(text: str) -> list[str | Reference]:
    """Literal text and references, in order. Raises TemplateError on anything else."""
    parts: list[str | Reference] = []
    pos = 0
    for found in _TOKEN.finditer(text):
        parts.append(text[pos : found.start()])
        pos = found.end()
        token = found.group(0)
        if token == "$${":
            parts.append("${")
            continue
        inner = found.group(1)
        if inner is None:
            raise TemplateError(f"unclosed or nested ${{ in {text!r}")
        path = inner.strip()
        if not _PATH.match(path):
            raise TemplateError(
                f"${{{inner}}} is not a reference: write a dotted path such as ${{alert.labels.service}}; "
                "expressions are never evaluated"
            )
        parts.append(Reference(tuple(path.split("."))))
    parts.append(text[pos:])
    return [p for p in parts if p != ""]


def references(text: str) -> list[Reference]:
    return [p for p in _parse(text) if isinstance(p, Reference)]


def has_template(value: Any) -> bool:
    return isinstance(value, str) and "${" in value


def walk_strings(value: Any, loc: Loc = ()) -> Iterator[tuple[Loc, str]]:
    """Every string inside nested dicts and lists, with its location."""
    if isinstance(value, str):
        yield loc, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from walk_strings(item, (*loc, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from walk_strings(item, (*loc, index))


def lookup(context: Mapping[str, Any], ref: Reference) -> Any:
    """The value a reference names, or TemplateError saying which part is missing."""
    current: Any = context
    for depth, key in enumerate(ref.path):
        where = ".".join(ref.path[:depth]) or "the context"
        if isinstance(current, Mapping):
            if key not in current:
                known = ", ".join(sorted(map(str, current))) or "nothing"
                raise TemplateError(f"${{{ref.text}}}: {where} has no {key!r} (it has: {known})")
            current = current[key]
        elif isinstance(current, list) and key.removeprefix("-").isdigit():
            # Items by number; a negative number counts from the end (-1: the last, e.g. the newest).
            if not -len(current) <= int(key) < len(current):
                raise TemplateError(f"${{{ref.text}}}: {where} has only {len(current)} item(s)")
            current = current[int(key)]
        else:
            raise TemplateError(f"${{{ref.text}}}: {where} is {type(current).__name__}, not a mapping")
    return current


def _scalar_text(value: Any, ref: Reference) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise TemplateError(f"${{{ref.text}}} is {type(value).__name__}; only scalars can sit inside text")


def render_string(text: str, context: Mapping[str, Any]) -> Any:
    parts = _parse(text)
    if len(parts) == 1 and isinstance(parts[0], Reference):
        return lookup(context, parts[0])
    return "".join(p if isinstance(p, str) else _scalar_text(lookup(context, p), p) for p in parts)


def render(value: Any, context: Mapping[str, Any]) -> Any:
    """A copy of `value` (nested dicts, lists, strings) with every reference substituted."""
    if isinstance(value, str):
        return render_string(value, context)
    if isinstance(value, Mapping):
        return {key: render(item, context) for key, item in value.items()}
    if isinstance(value, list):
        return [render(item, context) for item in value]
    return value


# --- static checks ----------------------------------------------------------------------------

ANY = "any"  # everything below is known only at run time (alert labels, free-form details)
SCALAR = "scalar"
Shape = Any  # a Mapping of names to shapes, a pydantic model class, ANY or SCALAR


def _field_shape(annotation: Any) -> Shape:
    options = [a for a in get_args(annotation) if a is not type(None)] if get_origin(annotation) else []
    if get_origin(annotation) in (Union, UnionType) and len(options) == 1:
        annotation = options[0]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if annotation in (str, int, float, bool) or (
        isinstance(annotation, type) and issubclass(annotation, Enum)
    ):
        return SCALAR
    return ANY


def check_reference(ref: Reference, scope: Mapping[str, Shape]) -> None:
    """Raise TemplateError when `ref` cannot name anything in `scope`, known before any run."""
    shape: Shape = scope
    for depth, key in enumerate(ref.path):
        where = ".".join(ref.path[:depth]) or "a template"
        if shape == ANY:
            return
        if isinstance(shape, type) and issubclass(shape, BaseModel):
            if key not in shape.model_fields:
                known = ", ".join(shape.model_fields)
                raise TemplateError(f"${{{ref.text}}}: {where} has no {key!r} (it has: {known})")
            shape = _field_shape(shape.model_fields[key].annotation)
        elif isinstance(shape, Mapping):
            if key not in shape:
                known = ", ".join(sorted(shape)) or "nothing yet"
                raise TemplateError(f"${{{ref.text}}}: {where} has no {key!r} (known here: {known})")
            shape = shape[key]
        else:
            raise TemplateError(f"${{{ref.text}}}: {where} is a single value with no {key!r}")
