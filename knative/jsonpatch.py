"""RFC 6902 JSON patches (add, replace, remove), as skaffold applies profile patches and kustomize applies
JSON patches; the tests also use them to break a real manifest in exactly one place."""
from __future__ import annotations

import copy


class PatchError(ValueError):
    pass


def apply(document, operations: list[dict]):
    """A patched copy of the document."""
    patched = copy.deepcopy(document)
    for operation in operations:
        apply_operation(patched, operation)
    return patched


def apply_operation(document: dict | list, operation: dict) -> None:
    """One operation, in place."""
    op, path = operation.get("op"), operation.get("path", "")
    tokens = [token.replace("~1", "/").replace("~0", "~") for token in path.split("/")[1:]]
    if not tokens or op not in {"add", "replace", "remove"}:
        raise PatchError(f"unsupported patch {operation!r}")
    parent = document
    for token in tokens[:-1]:
        parent = _child(parent, token, path)
    last = tokens[-1]
    value = copy.deepcopy(operation.get("value"))
    if isinstance(parent, list):
        if op == "add" and last == "-":
            parent.append(value)
            return
        index = _index(parent, last, path, allow_end=op == "add")
        if op == "add":
            parent.insert(index, value)
        elif op == "replace":
            parent[index] = value
        else:
            del parent[index]
        return
    if not isinstance(parent, dict):
        raise PatchError(f"patch path {path!r} does not lead into an object or a list")
    if op != "add" and last not in parent:
        raise PatchError(f"patch path {path!r}: {last!r} does not exist")
    if op == "remove":
        del parent[last]
    else:
        parent[last] = value


def _child(node, token: str, path: str):
    if isinstance(node, list):
        return node[_index(node, token, path, allow_end=False)]
    if isinstance(node, dict) and token in node:
        return node[token]
    raise PatchError(f"patch path {path!r}: {token!r} does not exist")


def _index(node: list, token: str, path: str, allow_end: bool) -> int:
    if not token.isdigit() or int(token) > len(node) or (int(token) == len(node) and not allow_end):
        raise PatchError(f"patch path {path!r}: no index {token!r} in a list of {len(node)}")
    return int(token)
