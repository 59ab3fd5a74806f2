"""Reading the policy YAML while remembering where every value came from.

PyYAML's composer keeps a line for each node; we walk the node tree once to build the plain data and a
map from each value's path (("agents", "support-bot", "roles", 0)) to its line, so every later error
can name the line to fix. Duplicate keys are an error here, where YAML would silently keep the last.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class PolicyProblem:
    file: str
    line: int
    where: str
    message: str
    fix: str

    def __str__(self) -> str:
        location = f"{self.file}:{self.line}"
        where = f" {self.where}:" if self.where else ""
        return f"{location}:{where} {self.message}. Fix: {self.fix}"


class PolicyInvalid(Exception):
    def __init__(self, problems: list[PolicyProblem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


@dataclass
class Source:
    file: str
    data: Any
    lines: dict[Path, int] = field(default_factory=dict)

    def line_of(self, path: Path) -> int:
        """The line of the nearest enclosing value that has one."""
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), 1)

    def problem(self, path: Path, message: str, fix: str) -> PolicyProblem:
        return PolicyProblem(self.file, self.line_of(path), dotted(path), message, fix)


def dotted(path: Path) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def read_source(file: str, text: str) -> Source:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        reason = getattr(exc, "problem", None) or "not valid YAML"
        raise PolicyInvalid(
            [PolicyProblem(file, line, "", f"YAML syntax: {reason}", "correct the YAML at this line")]
        ) from exc
    if root is None:
        raise PolicyInvalid([PolicyProblem(file, 1, "", "the file is empty", "start with `version: 1`")])
    source = Source(file=file, data=None)
    problems: list[PolicyProblem] = []
    source.data = _build(root, (), source, problems)
    if problems:
        raise PolicyInvalid(problems)
    return source


def _build(node: yaml.Node, path: Path, source: Source, problems: list[PolicyProblem]) -> Any:
    source.lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                problems.append(source.problem(path, "a key must be a plain name", "write the key as text"))
                continue
            key = str(key_node.value)
            if key in result:
                problems.append(
                    PolicyProblem(
                        source.file,
                        key_node.start_mark.line + 1,
                        dotted((*path, key)),
                        f"key {key!r} appears twice",
                        "keep one of them",
                    )
                )
                continue
            result[key] = _build(value_node, (*path, key), source, problems)
            source.lines[(*path, key)] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), source, problems) for i, item in enumerate(node.value)]
    # Scalars: the safe constructor decides between int, bool, null and str, as yaml.safe_load would.
    return _SCALARS.construct_object(node, deep=True)


_SCALARS = yaml.SafeLoader("")
