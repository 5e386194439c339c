"""Build-time checks of a graph's wiring, so mistakes surface at compile, not mid-run.

Two rules: every key a node reads is a graph input or is written by a node upstream of it; and a
key that two possibly-concurrent nodes write must declare a reducer on its state field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import combinations

from agentkit.errors import GraphBuildError

START = "__start__"
END = "__end__"


def _reach(adjacency: Mapping[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    stack = [start]
    while stack:
        for nxt in adjacency.get(stack.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def ancestors(edges: Iterable[tuple[str, str]]) -> dict[str, set[str]]:
    """Node -> every node that can run before it (itself included when it sits on a loop)."""
    reverse: dict[str, set[str]] = {}
    for src, dst in edges:
        reverse.setdefault(dst, set()).add(src)
    nodes = {n for edge in edges for n in edge}
    return {n: _reach(reverse, n) for n in nodes}


def check_reads(
    reads: Mapping[str, Iterable[str]],
    writes: Mapping[str, Iterable[str]],
    inputs: set[str],
    fields: set[str],
    upstream: Mapping[str, set[str]],
    graph: str,
) -> None:
    def known(node: str, verb: str, key: str) -> None:
        if key not in fields:
            raise GraphBuildError(
                f"graph {graph!r}: node {node!r} {verb} {key!r}, which is not a field of the state; "
                f"add it to the state model (fields: {sorted(fields)})"
            )

    writers: dict[str, set[str]] = {}
    for node, keys in writes.items():
        for key in keys:
            known(node, "writes", key)
            writers.setdefault(key, set()).add(node)
    for node, keys in reads.items():
        for key in keys:
            known(node, "reads", key)
            if key in inputs:
                continue
            by = writers.get(key, set())
            if not by:
                raise GraphBuildError(
                    f"graph {graph!r}: node {node!r} reads {key!r} but no node writes it and it is not a graph "
                    "input; make a node write it or list it in Graph(inputs=...)"
                )
            if not by & upstream.get(node, set()):
                raise GraphBuildError(
                    f"graph {graph!r}: node {node!r} reads {key!r} before it is written: only "
                    f"{sorted(by)} write it, and none of them runs upstream of {node!r}; add an edge"
                )


def check_parallel_writes(
    writes: Mapping[str, Iterable[str]],
    static_edges: Iterable[tuple[str, str]],
    all_edges: Iterable[tuple[str, str]],
    reducers: set[str],
    graph: str,
) -> None:
    """Two writers of a key conflict if a static fan-out can start both in the same step.

    Targets of one conditional route are exclusive (the router picks one), so they don't conflict.
    """
    all_edges = list(all_edges)
    forward: dict[str, set[str]] = {}
    for src, dst in all_edges:
        forward.setdefault(src, set()).add(dst)
    below = {n: _reach(forward, n) | {n} for n in {x for e in all_edges for x in e}}
    fanouts: dict[str, set[str]] = {}
    for src, dst in static_edges:
        fanouts.setdefault(src, set()).add(dst)
    branch_pairs = [(a, b) for succ in fanouts.values() if len(succ) > 1 for a, b in combinations(sorted(succ), 2)]

    writers: dict[str, set[str]] = {}
    for node, keys in writes.items():
        for key in keys:
            writers.setdefault(key, set()).add(node)
    for key, nodes in writers.items():
        if key in reducers or len(nodes) < 2:
            continue
        for a, b in combinations(sorted(nodes), 2):
            ordered = a in below.get(b, set()) or b in below.get(a, set())
            if ordered:
                continue
            if any(
                (a in below[s1] and b in below[s2]) or (b in below[s1] and a in below[s2]) for s1, s2 in branch_pairs
            ):
                raise GraphBuildError(
                    f"graph {graph!r}: parallel branches {a!r} and {b!r} both write {key!r} without a reducer; "
                    f"declare one on the state field, e.g. {key}: Annotated[list[...], Collect()]"
                )
