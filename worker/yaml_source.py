"""YAML with line numbers, and errors that name the file, the line and the field.

PyYAML's composed node tree knows where every key and value starts; we keep a map from each path
(`("steps", 2, "action", "playbook")`) to its line, and turn pydantic's error locations into
`file:line: field: message`. Duplicate keys, which PyYAML would silently overwrite, are errors.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from workflows.spec_errors import clean_loc, dotted, error_loc
from workflows.templating import Loc


@dataclass(frozen=True)
class Problem:
    line: int
    field: str
    message: str


class SourceError(Exception):
    """Everything wrong with one file, each problem on its own `file:line: field: message` line."""

    def __init__(self, path: Path, problems: list[Problem]) -> None:
        self.path = path
        self.problems = sorted(problems, key=lambda p: p.line)
        super().__init__("\n".join(f"{path}:{p.line}: {p.field}: {p.message}" for p in self.problems))


@dataclass
class YamlDocument:
    path: Path
    text: str
    data: Any
    lines: dict[Loc, int]

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    def problem(self, loc: Loc, message: str) -> Problem:
        """A problem at `loc` (a pydantic or rule location), placed on the nearest line we know."""
        clean = clean_loc(self.data, loc)
        for depth in range(len(clean), -1, -1):
            if (line := self.lines.get(clean[:depth])) is not None:
                return Problem(line, dotted(clean), message)
        return Problem(1, dotted(clean), message)

    def problems(self, err: ValidationError) -> list[Problem]:
        return [self.problem(error_loc(e), e["msg"]) for e in err.errors()]

    def error(self, problems: Iterable[Problem]) -> SourceError:
        return SourceError(self.path, list(problems))


def _index(node: yaml.Node, loc: Loc, lines: dict[Loc, int], problems: list[Problem]) -> None:
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.start_mark)
            line = key_node.start_mark.line + 1
            if key in seen:
                problems.append(
                    Problem(line, dotted((*loc, key)), f"duplicate key (first on line {seen[key]})")
                )
            seen[key] = line
            lines[(*loc, key)] = line
            _index(value_node, (*loc, key), lines, problems)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _index(item, (*loc, index), lines, problems)


def load_yaml(path: Path) -> YamlDocument:
    """Parse one YAML file, or raise SourceError naming the file and line of what is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise SourceError(path, [Problem(1, "(file)", f"cannot read: {err}")]) from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark else 1
        raise SourceError(path, [Problem(line, "(yaml)", f"{err.problem or err}".strip())]) from None
    except yaml.YAMLError as err:
        raise SourceError(path, [Problem(1, "(yaml)", str(err))]) from None
    finally:
        loader.dispose()
    lines: dict[Loc, int] = {}
    problems: list[Problem] = []
    if node is not None:
        _index(node, (), lines, problems)
    if problems:
        raise SourceError(path, problems)
    if not isinstance(data, dict):
        raise SourceError(path, [Problem(1, "(top)", "expected a mapping at the top of the file")])
    return YamlDocument(path=path, text=text, data=data, lines=lines)
