"""A small JSONPath: the subset PII configs use to point into self-describing JSON data.

Supported: ``$`` then any of ``.name``, ``['name']`` / ``["name"]``, unions ``['a', 'b']``,
array indexes ``[0]``, and wildcards ``.*`` / ``[*]``; a dot before a bracket
(``$.data.['email']``) is accepted as Jayway JSONPath accepts it. Filters, slices, recursive
descent and scripts are not: they are reported at load, with the column where parsing stopped.

``replace`` never changes its input: it copies the objects and arrays on the way to a changed
value and shares everything else, so cached entities stay intact.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Step = tuple[str, Any]  # ("names", (name, ...)) | ("index", int) | ("all", None)

_NAME = re.compile(r"[^.\[\]\s'\"*]+")
_QUOTED = re.compile(r"\s*(?:'((?:[^'\\]|\\.)*)'|\"((?:[^\"\\]|\\.)*)\")\s*")
_INDEX = re.compile(r"\s*(-?\d+)\s*\]")
_STAR = re.compile(r"\s*\*\s*\]")


class JsonPathError(ValueError):
    """A path this module cannot read; the message names the column."""


def parse(path: str) -> tuple[Step, ...]:
    if not path.startswith("$"):
        raise JsonPathError(f"expected a path starting with $, got {path!r}")
    steps: list[Step] = []
    position = 1
    while position < len(path):
        step, position = _parse_step(path, position)
        steps.append(step)
    return tuple(steps)


def replace(
    node: Any, steps: tuple[Step, ...], leaf: Callable[[Any, str], Any], where: str = "$"
) -> Any:
    """``node`` with ``leaf(value, path)`` applied to every value ``steps`` reach.

    Returns ``node`` itself when nothing changed. Paths that lead nowhere change nothing.
    """
    if not steps:
        return leaf(node, where)
    (kind, argument), rest = steps[0], steps[1:]
    if isinstance(node, dict):
        keys = list(node) if kind == "all" else argument if kind == "names" else ()
        return _replace_children(node, keys, rest, leaf, where)
    if isinstance(node, list):
        if kind == "all":
            indexes = range(len(node))
        elif kind == "index" and -len(node) <= argument < len(node):
            indexes = range(argument % len(node), argument % len(node) + 1)
        else:
            indexes = range(0)
        return _replace_children(node, indexes, rest, leaf, where)
    return node


def _replace_children(
    node: Any,
    keys: Any,
    rest: tuple[Step, ...],
    leaf: Callable[[Any, str], Any],
    where: str,
) -> Any:
    copy = None
    for key in keys:
        if isinstance(node, dict) and key not in node:
            continue
        child = node[key]
        inner = f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}"
        new = replace(child, rest, leaf, inner)
        if new is not child:
            if copy is None:
                copy = dict(node) if isinstance(node, dict) else list(node)
            copy[key] = new
    return node if copy is None else copy


def _parse_step(path: str, position: int) -> tuple[Step, int]:
    if path.startswith(".[", position):
        position += 1
    if path.startswith("[", position):
        return _parse_bracket(path, position + 1)
    if not path.startswith(".", position):
        raise JsonPathError(f"column {position + 1} of {path!r}: expected . or [")
    if path.startswith("*", position + 1):
        return ("all", None), position + 2
    match = _NAME.match(path, position + 1)
    if match is None:
        raise JsonPathError(f"column {position + 2} of {path!r}: expected a property name")
    return ("names", (match.group(),)), match.end()


def _parse_bracket(path: str, position: int) -> tuple[Step, int]:
    for pattern, kind in ((_STAR, "all"), (_INDEX, "index")):
        match = pattern.match(path, position)
        if match:
            return (kind, int(match.group(1)) if kind == "index" else None), match.end()
    names = []
    while True:
        match = _QUOTED.match(path, position)
        if match is None:
            raise JsonPathError(
                f"column {position + 1} of {path!r}: expected a quoted name, an index or *"
            )
        names.append(_unescape(match.group(1) if match.group(1) is not None else match.group(2)))
        position = match.end()
        if path.startswith("]", position):
            return ("names", tuple(names)), position + 1
        if not path.startswith(",", position):
            raise JsonPathError(f"column {position + 1} of {path!r}: expected , or ]")
        position += 1


def _unescape(name: str) -> str:
    return re.sub(r"\\(.)", r"\1", name)
