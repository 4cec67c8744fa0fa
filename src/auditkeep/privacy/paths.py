"""Field paths of redaction rules, and the JSON pointers redactions are recorded under.

A rule's path is dotted (`metadata.card`, `metadata.*.password`, `changes.*.after`) or a
JSON pointer (`/metadata/card`); `*` is one key or list index, `**` any number of them
(`metadata.**.email`). What fired is recorded as an RFC 6901 pointer to the concrete
place (`/changes/0/after`), which names keys with dots or slashes without ambiguity and
is how API errors name fields too.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

Parts = tuple[str | int, ...]


class PathError(ValueError):
    pass


def parse_pattern(path: str) -> tuple[str, ...]:
    """The segments of a rule path; raises PathError for an empty one."""
    if path.startswith("/"):
        segs = tuple(s.replace("~1", "/").replace("~0", "~") for s in path[1:].split("/"))
    else:
        segs = tuple(path.split("."))
    if not path or any(s == "" for s in segs):
        raise PathError(f"not a field path: {path!r} (dotted like metadata.card, or a JSON "
                        f"pointer like /metadata/card)")
    if segs[0] in ("*", "**"):
        raise PathError(f"{path!r}: a path starts with a field name, not a wildcard")
    return segs


def pointer(parts: Parts) -> str:
    """RFC 6901 pointer of concrete parts."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def parse_pointer(ptr: str) -> list[str]:
    if ptr == "":
        return []
    if not ptr.startswith("/"):
        return ptr.split(".")  # the dotted keys of actor fields (`actor.email`)
    return [s.replace("~1", "/").replace("~0", "~") for s in ptr[1:].split("/")]


def matches(doc: Any, segs: tuple[str, ...]) -> Iterator[tuple[Parts, Any, str | int]]:
    """Every concrete place `segs` names in `doc`: (parts, container, key or index)."""
    yield from _walk(doc, segs, 0, ())


def _walk(node: Any, segs: tuple[str, ...], i: int, at: Parts
          ) -> Iterator[tuple[Parts, Any, str | int]]:
    seg = segs[i]
    last = i == len(segs) - 1
    if seg == "**":
        if last:
            yield from _all_below(node, at)
            return
        yield from _walk(node, segs, i + 1, at)  # zero levels
        for key, child in _children(node):
            yield from _walk(child, segs, i, (*at, key))
        return
    for key, child in _children(node, None if seg == "*" else seg):
        here = (*at, key)
        if last:
            yield here, node, key
        else:
            yield from _walk(child, segs, i + 1, here)


def _children(node: Any, name: str | None = None) -> list[tuple[str | int, Any]]:
    if type(node) is dict:
        if name is None:
            return list(node.items())
        return [(name, node[name])] if name in node else []
    if type(node) is list:
        if name is None:
            return list(enumerate(node))
        if name.isdigit() and int(name) < len(node):
            return [(int(name), node[int(name)])]
    return []


def _all_below(node: Any, at: Parts) -> Iterator[tuple[Parts, Any, str | int]]:
    for key, child in _children(node):
        here = (*at, key)
        yield here, node, key
        if type(child) in (dict, list):
            yield from _all_below(child, here)


def lookup(doc: Any, ptr: str) -> tuple[Any, str | int] | None:
    """(container, key) of a concrete pointer in `doc`, or None when it is not there."""
    parts = parse_pointer(ptr)
    if not parts:
        return None
    node = doc
    for p in parts[:-1]:
        found = _children(node, p)
        if not found:
            return None
        node = found[0][1]
    last = parts[-1]
    if type(node) is dict:
        return (node, last) if last in node else None
    if type(node) is list and last.isdigit() and int(last) < len(node):
        return node, int(last)
    return None


__all__ = ["PathError", "lookup", "matches", "parse_pattern", "parse_pointer", "pointer"]
