"""Reading the policy YAML while remembering where every value came from.

PyYAML's composer keeps a line for each node; we walk the node tree once to build the plain data and a
map from each value's path (("agents", "support-bot", "roles", 0)) to its line, so every later error
can name the line to fix. Duplicate keys are an error here, where YAML would silently keep the last.

The reader is bounded, because a policy file is input: size, nesting depth and the number of values are
capped, and anchors, aliases and merge keys (YAML 1.1 §7.1, the `<<` type) are refused. One alias
stands for a whole subtree, so nine levels of nine aliases (the "billion laughs", 600 bytes) expand to
9**9 values; a policy never needs them, and writing values out keeps every value on its own line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

Path = tuple[str | int, ...]

MAX_POLICY_BYTES = 1024 * 1024
MAX_DEPTH = 32
"""Nesting levels; a policy needs about eight (agents.bot.jwks.keys[0].kty)."""
MAX_NODES = 50_000
"""Values (scalars, lists and mappings) in one file: room for thousands of agents, parsed in seconds."""
NO_SHARED_VALUES = "not supported in policy files: write the values out"
_MERGE_TAG = "tag:yaml.org,2002:merge"


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


class _Refused(Exception):
    def __init__(self, line: int, message: str, fix: str) -> None:
        super().__init__(message)
        self.line, self.message, self.fix = line, message, fix


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing anchors and aliases and bounding depth and node count as it
    composes, so a hostile document is stopped at its first offending node, before any expansion."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event: yaml.Event = self.peek_event()  # type: ignore[no-untyped-call]  # untyped in the stubs
        line = _line(event.start_mark)
        if isinstance(event, yaml.AliasEvent):
            raise _Refused(line, f"alias '*{event.anchor}'", f"anchors and aliases are {NO_SHARED_VALUES}")
        if isinstance(event, yaml.NodeEvent) and event.anchor is not None:
            raise _Refused(line, f"anchor '&{event.anchor}'", f"anchors and aliases are {NO_SHARED_VALUES}")
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise _Refused(line, f"the file holds more than {MAX_NODES} values", "split it up")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _Refused(line, f"values are nested deeper than {MAX_DEPTH} levels", "flatten them")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _line(mark: Any) -> int:
    return int(mark.line) + 1 if mark is not None else 1


def read_source(file: str, text: str) -> Source:
    if len(text) > MAX_POLICY_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_POLICY_BYTES:
        raise PolicyInvalid([PolicyProblem(file, 1, "", "the file is larger than 1 MiB", "split it up")])
    try:
        root = yaml.compose(text, Loader=_BoundedLoader)
    except _Refused as refused:
        raise PolicyInvalid([PolicyProblem(file, refused.line, "", refused.message, refused.fix)]) from None
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
    source.data = _build(root, (), source, problems, yaml.constructor.SafeConstructor())
    if problems:
        raise PolicyInvalid(problems)
    return source


def _build(
    node: yaml.Node,
    path: Path,
    source: Source,
    problems: list[PolicyProblem],
    scalars: yaml.constructor.SafeConstructor,
) -> Any:
    source.lines[path] = node.start_mark.line + 1
    if node.tag == _MERGE_TAG:
        problems.append(source.problem(path, "merge key '<<'", f"merge keys are {NO_SHARED_VALUES}"))
        return None
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                problems.append(
                    PolicyProblem(
                        source.file,
                        key_node.start_mark.line + 1,
                        dotted(path),
                        "merge key '<<'",
                        f"merge keys are {NO_SHARED_VALUES}",
                    )
                )
                continue
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
            result[key] = _build(value_node, (*path, key), source, problems, scalars)
            source.lines[(*path, key)] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), source, problems, scalars) for i, item in enumerate(node.value)]
    # Scalars: the safe constructor decides between int, bool, null and str, as yaml.safe_load would;
    # what it cannot build (a 30th of February, a 5000-digit number, an unknown tag) is a problem here.
    try:
        return scalars.construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError):
        text = str(node.value)
        shown = text if len(text) <= 40 else text[:40] + "..."
        fix = "quote it to make it text, or correct it"
        problems.append(source.problem(path, f"the value {shown!r} cannot be read", fix))
        return None
