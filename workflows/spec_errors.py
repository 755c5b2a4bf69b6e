"""Specs written with templates (`action:`, `check:`), and pydantic errors placed as YAML spells them.

A spec such as `{executor: kubernetes, args: {replicas: "${params.n}"}}` cannot be validated as it
stands: the template is not yet an int. `spec_issues` validates it anyway and keeps only the errors
that cannot be caused by a template, so unknown executors, operations, fields and bad literal
arguments are caught when the playbook loads; the rest is validated again once rendered.

`clean_loc` turns pydantic's error locations (which name union members) into the path a person sees
in the file, which the loader maps to a line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, get_args

from pydantic import BaseModel, TypeAdapter, ValidationError

from workflows.templating import Loc, has_template, walk_strings


@dataclass(frozen=True)
class Issue:
    loc: Loc
    message: str

    def __str__(self) -> str:
        return f"{dotted(self.loc)}: {self.message}"


def dotted(loc: Loc) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "(top)"


_ABSENT = object()


def _at(data: Any, loc: Loc) -> Any:
    """The value at `loc` inside nested dicts and lists, or _ABSENT."""
    for part in loc:
        if isinstance(data, Mapping):
            if part not in data:
                return _ABSENT
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            return _ABSENT
    return data


def clean_loc(data: Any, loc: Loc) -> Loc:
    """Drop the union tags pydantic puts in error locations, keeping the path as written in YAML.

    A segment that is not in the data is a tag when it is the value of the discriminating field
    (`kind: action`) or when the segment after it is in the data; otherwise it is a missing field.
    A segment that is in the data is still the tag when the segment after it is beside it and not
    under it (`steps.0.action.retry`: the step's retry, not a field of its `action:`).
    Below a scalar (a matcher written as one string) nothing more is named.
    """
    kept: list[str | int] = []
    current: Any = data
    tagged = False  # one tag at most per level: `steps.0.action.action` is the tag, then the field
    for index, part in enumerate(loc):
        if part == "[key]":
            continue  # pydantic's marker for an error in a mapping's key: the key is the place
        after = loc[index + 1 : index + 2]
        next_present = bool(after) and _at(current, after) is not _ABSENT
        found = _at(current, (part,))
        values = [v for v in current.values() if isinstance(v, str)] if isinstance(current, Mapping) else []
        if found is not _ABSENT and not (part in values and next_present and _at(found, after) is _ABSENT):
            kept.append(part)
            current, tagged = found, False
            continue
        if not isinstance(current, Mapping | list):
            break
        if isinstance(part, str) and not tagged and (part in values or next_present):
            tagged = True
            continue
        kept.extend(loc[index:])
        break
    return tuple(kept)


def error_loc(error: Mapping[str, Any]) -> Loc:
    """A pydantic error's location; a wrong tag is placed on the field that holds it (`kind`)."""
    loc = tuple(error["loc"])
    if error["type"] == "union_tag_invalid":
        return (*loc, str(error["ctx"]["discriminator"]).strip("'"))
    return loc


def _templated(value: Any) -> bool:
    return any(has_template(text) for _, text in walk_strings(value))


def _nested(err: Mapping[str, Any]) -> ValidationError | None:
    """The ValidationError a validator wrapped in a ValueError (a model validating its own args)."""
    cause = (err.get("ctx") or {}).get("error")
    for candidate in (cause, getattr(cause, "__cause__", None)):
        if isinstance(candidate, ValidationError):
            return candidate
    return None


def _anchor(data: Any, errors: list[Any]) -> Loc:
    """Where in `data` a wrapped validation ran: the path whose value the inner errors describe."""
    paths: list[Loc] = [()]
    for path in paths:  # breadth first; the list grows while we walk it
        node = _at(data, path)
        if all(
            _at(node, tuple(e["loc"])) is e["input"] or _at(node, tuple(e["loc"])[:-1]) is e["input"]
            for e in errors
        ):
            return path
        if isinstance(node, Mapping):
            paths.extend((*path, key) for key, value in node.items() if isinstance(value, Mapping))
    return ()


def _resolved(data: Any, loc: Loc) -> int:
    """How many leading segments of `loc` exist in `data`."""
    for depth in range(len(loc), -1, -1):
        if _at(data, loc[:depth]) is not _ABSENT:
            return depth
    return 0


def _spec_errors(raw: dict[str, Any], errors: list[Any], base: Loc) -> list[Issue]:
    issues: list[Issue] = []
    unions: dict[Loc, list[str]] = {}
    for e in errors:
        where = (*base, *clean_loc(_at(raw, base), error_loc(e)))
        depth = _resolved(raw, where)
        if (inner := _nested(e)) is not None:
            issues.extend(
                _spec_errors(raw, inner.errors(), (*where, *_anchor(_at(raw, where), inner.errors())))
            )
        elif has_template(e.get("input")):
            continue  # checked again at run time, once the template has a value
        elif e["type"] not in ("missing", "extra_forbidden") and _templated(_at(raw, where)):
            continue  # a rule over several fields, some of them templates: only run time can tell
        elif len(where) - depth >= 2:
            # A plain union tried each member in turn: one line for the union, not one per member.
            unions.setdefault(where[:depth], []).append(
                f"{where[depth]}: {dotted(where[depth + 1 :])} {e['msg']}"
            )
        else:
            issues.append(Issue(where, e["msg"]))
    for where, tried in unions.items():
        issues.append(Issue(where, f"fits none of the accepted forms ({'; '.join(tried[:4])})"))
    return issues


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation accepts (through Annotated, unions and Optional)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models(arg)]


def _fields(model: type[BaseModel]) -> set[str]:
    return {name for name, info in model.model_fields.items()} | {
        info.alias for info in model.model_fields.values() if info.alias
    }


_TAG_KEYS = ("executor", "type")


def _tag(model: type[BaseModel], key: str) -> Any:
    info = model.model_fields.get(key)
    return info.default if info is not None else None


def _unknown_keys(raw: Any, annotation: Any, loc: Loc) -> list[Issue]:
    """Keys no model field takes. Pydantic ignores them by default, which would hide a typo such as
    `extravar:`; a model that forbids extras is left to pydantic."""
    if not isinstance(raw, Mapping):
        return []
    models = _models(annotation)
    keys = set(map(str, raw))
    tagged = [
        m for m in models if any(_tag(m, k) is not None and _tag(m, k) == raw.get(k) for k in _TAG_KEYS)
    ]
    chosen = tagged or [m for m in models if keys <= _fields(m)]
    if len(chosen) != 1:
        # No tag picks a member: only keys that no member takes are surely wrong.
        known = set().union(*(_fields(m) for m in models)) if models else keys
        forms = ", ".join(m.__name__ for m in models)
        return [
            Issue((*loc, key), f"unknown field (none of {forms} takes it)") for key in sorted(keys - known)
        ]
    model = chosen[0]
    issues: list[Issue] = []
    for key, value in raw.items():
        if key not in _fields(model):
            if model.model_config.get("extra") != "forbid":
                issues.append(
                    Issue(
                        (*loc, key),
                        f"unknown field for {model.__name__} (it takes: {', '.join(model.model_fields)})",
                    )
                )
            continue
        info = model.model_fields.get(key) or next(i for i in model.model_fields.values() if i.alias == key)
        issues.extend(_unknown_keys(value, info.annotation, (*loc, key)))
    return issues


def spec_issues(spec: Any, adapter: TypeAdapter[Any], raw: dict[str, Any], tag: str, loc: Loc) -> list[Issue]:
    """Validate a spec whose values may be templates: errors on templated values wait for run time."""
    if has_template(raw.get(tag)):
        return [Issue((*loc, tag), f"{tag} must be written out, not templated")]
    found = _unknown_keys(raw, spec, ())
    try:
        adapter.validate_python(raw)
    except ValidationError as err:
        found += _spec_errors(raw, err.errors(), ())
    return [Issue((*loc, *issue.loc), issue.message) for issue in found]
