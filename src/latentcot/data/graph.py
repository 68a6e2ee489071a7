"""ProsQA as a graph: the symbolic view of "Reasoning by Superposition" (Zhu et al. 2025,
arXiv:2505.12514; code Ber666/reasoning-by-superposition).

A ProsQA record carries its graph (``idx_to_symbol``, ``edges``, ``root``, ``target``,
``neg_target``). Its graph form writes every node as one token (its index) and drops the words::

    question: "0 2 | 1 3 | 3 14 | … [Q] 16 13 [R] 1"    (edges "s t", the two candidates, the root)
    steps:    ["3", "14", "16"]                          (a shortest path from the root, root excluded)
    answer:   "16"                                       (the target)

with the graph fields kept in ``meta`` (plus ``hops``, the target's distance from the root), so a
record in graph form can be re-rendered: :class:`GraphViews` draws a fresh edge order, candidate
order and shortest path each time a record is read, as the reference reshuffles every epoch.

What a continuous thought is compared with (the reference notebook's groups, for thought
``i = 1, 2, …``): *reachable* nodes (distance ≤ i from the root), the *frontier* (ends of walks
of exactly ``i`` edges), the *optimal* nodes (on a shortest root→target path at depth ``i``, the
reference's ``neighbor_k[i]``, which its curriculum supervises) and the *unreachable* rest.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from latentcot.data.record import ReasoningExample
from latentcot.errors import LatentCotError

if TYPE_CHECKING:  # torch only draws the random orders; reading a graph does not need it
    import torch

GRAPH_FIELDS = ("idx_to_symbol", "edges", "root", "target", "neg_target")
_GRAPH_QUESTION = re.compile(r"(?:\d+ \d+(?: \| \d+ \d+)*)? ?\[Q\] (\d+) (\d+) \[R\] (\d+)")
_QUERY = re.compile(r"Is (\w+) a (\w+) or (\w+)\?$")


@dataclass(frozen=True)
class Graph:
    """A ProsQA graph: node ``i`` is named ``symbols[i]``; ``edges`` are (parent, child) pairs."""

    symbols: tuple[str, ...]
    edges: tuple[tuple[int, int], ...]
    root: int
    target: int
    neg_target: int

    def children(self) -> list[list[int]]:
        out: list[list[int]] = [[] for _ in self.symbols]
        for a, b in self.edges:
            out[a].append(b)
        return out

    def parents(self) -> list[list[int]]:
        out: list[list[int]] = [[] for _ in self.symbols]
        for a, b in self.edges:
            out[b].append(a)
        return out

    def fields(self) -> dict[str, Any]:
        """The record fields of the real ProsQA JSON, in its key order."""
        return {"idx_to_symbol": list(self.symbols), "edges": [list(e) for e in self.edges],
                "root": self.root, "target": self.target, "neg_target": self.neg_target}


def _bfs(adjacency: list[list[int]], source: int | Sequence[int]) -> list[int]:
    """Distance from ``source`` (from the nearest of several) along ``adjacency`` (-1 where unreachable)."""
    dist = [-1] * len(adjacency)
    queue = [source] if isinstance(source, int) else list(source)
    for node in queue:
        dist[node] = 0
    for node in queue:
        for nxt in adjacency[node]:
            if dist[nxt] < 0:
                dist[nxt] = dist[node] + 1
                queue.append(nxt)
    return dist


def graph_of(example: ReasoningExample, where: str = "record") -> Graph:
    """The graph a record carries in ``meta``, checked.

    Raises:
        LatentCotError: naming ``where`` and the field: a missing or mistyped field, an edge to a
            node past ``idx_to_symbol``, a target not reachable from the root, a distractor that is.
    """
    meta = example.meta
    for key in GRAPH_FIELDS:
        if key not in meta:
            raise LatentCotError(f"{where}: missing graph field '{key}'")
    symbols = meta["idx_to_symbol"]
    if not isinstance(symbols, list) or not symbols or not all(isinstance(s, str) and s for s in symbols):
        raise LatentCotError(f"{where}: idx_to_symbol: must be a non-empty list of names")
    n = len(symbols)
    for key in ("root", "target", "neg_target"):
        value = meta[key]
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < n:
            raise LatentCotError(f"{where}: {key}: must be a node index in [0, {n}), got {value!r}")
    edges = meta["edges"]
    if not isinstance(edges, list):
        raise LatentCotError(f"{where}: edges: must be a list of [parent, child] pairs")
    pairs = []
    for i, edge in enumerate(edges):
        if (not isinstance(edge, list) or len(edge) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in edge)):
            raise LatentCotError(f"{where}: edges[{i}]: must be a [parent, child] pair of node indices, got {edge!r}")
        for v in edge:
            if not 0 <= v < n:
                raise LatentCotError(f"{where}: edges[{i}]: node {v} is past idx_to_symbol ({n} nodes)")
        if edge[0] == edge[1]:
            raise LatentCotError(f"{where}: edges[{i}]: a self-loop on node {edge[0]}")
        pairs.append((edge[0], edge[1]))
    graph = Graph(tuple(symbols), tuple(pairs), meta["root"], meta["target"], meta["neg_target"])
    dist = _bfs(graph.children(), graph.root)
    if dist[graph.target] <= 0:
        raise LatentCotError(f"{where}: target: node {graph.target} is not reachable from the root {graph.root}")
    if dist[graph.neg_target] >= 0:
        raise LatentCotError(f"{where}: neg_target: node {graph.neg_target} is reachable from the root {graph.root}")
    return graph


def distances(graph: Graph) -> list[int]:
    """Distance of every node from the root (-1 where unreachable)."""
    return _bfs(graph.children(), graph.root)


def hops(graph: Graph) -> int:
    """Length of a shortest root→target path."""
    return distances(graph)[graph.target]


def optimal_levels(graph: Graph) -> list[list[int]]:
    """``levels[i]``: the nodes at depth ``i`` of some shortest root→target path (``i = 0 … hops``;
    the reference's ``neighbor_k``), sorted. ``levels[0] == [root]`` and ``levels[-1] == [target]``."""
    d_root = distances(graph)
    d_target = _bfs(graph.parents(), graph.target)
    h = d_root[graph.target]
    return [sorted(v for v in range(len(graph.symbols)) if d_root[v] == i and d_target[v] == h - i)
            for i in range(h + 1)]


def walk_frontiers(graph: Graph, steps: int) -> list[set[int]]:
    """``frontiers[i]``: the ends of walks of exactly ``i`` edges from the root, ``i = 0 … steps``."""
    children = graph.children()
    frontiers = [{graph.root}]
    for _ in range(steps):
        frontiers.append({c for v in frontiers[-1] for c in children[v]})
    return frontiers


def node_groups(graph: Graph, thought: int) -> dict[str, set[int]]:
    """The node groups of the ``thought``-th continuous thought (1-based), as in the reference notebook:
    ``optimal`` ⊆ ``frontier`` ⊆ ``reachable``, and ``unreachable`` = every other node of an edge;
    plus ``mirror`` ⊆ ``unreachable`` (ours): the nodes the root cannot reach that lie exactly
    ``thought`` steps below another person — the frontier a search from the wrong person would hold.
    A thought that tracks depth but not the root holds ``mirror`` as much as ``frontier``, which the
    mean over all unreachable nodes (mostly nearer the other persons) does not show."""
    d_root = distances(graph)
    in_edges = {v for e in graph.edges for v in e}
    reachable = {v for v in in_edges if 0 <= d_root[v] <= thought}
    levels = optimal_levels(graph)
    frontier = walk_frontiers(graph, thought)[thought]
    optimal = set(levels[thought]) if thought < len(levels) else set()
    d_other = other_person_distances(graph)
    mirror = {v for v in in_edges if d_root[v] < 0 and d_other[v] == thought}
    return {"optimal": optimal & frontier, "frontier": frontier, "reachable": reachable,
            "unreachable": in_edges - reachable, "mirror": mirror}


def other_person_distances(graph: Graph) -> list[int]:
    """Steps from the nearest source (a node without parents: a person) other than the root down to
    every node; -1 where only the root is above it."""
    parents = graph.parents()
    return _bfs(graph.children(), [v for v, ps in enumerate(parents) if not ps and v != graph.root])


def local_guess(graph: Graph, steps: int = 2) -> int | None:
    """The candidate a search-free rule picks: the distractor is the one with a person other than
    the root at most ``steps`` steps above it. Returns the other candidate when exactly one is
    so close, else None (no guess). On the real ProsQA file this answers most questions
    (``bench/graph_shortcut.py``); ``distractor: matched`` in the generator takes it away."""
    d_other = other_person_distances(graph)
    close = [0 <= d_other[c] <= steps for c in (graph.target, graph.neg_target)]
    if close == [False, True]:
        return graph.target
    if close == [True, False]:
        return graph.neg_target
    return None


def render_question(graph: Graph, edge_order: Sequence[int], target_first: bool) -> str:
    """``"s t | s t | … [Q] c1 c2 [R] root"`` with the edges in ``edge_order``."""
    edges = " | ".join(f"{graph.edges[i][0]} {graph.edges[i][1]}" for i in edge_order)
    first, second = (graph.target, graph.neg_target) if target_first else (graph.neg_target, graph.target)
    return f"{edges} [Q] {first} {second} [R] {graph.root}"


def is_graph_form(example: ReasoningExample) -> bool:
    return _GRAPH_QUESTION.fullmatch(example.question) is not None


def _graph_example(graph: Graph, question: str, path: Sequence[int]) -> ReasoningExample:
    meta = {**graph.fields(), "hops": len(path) - 1}
    return ReasoningExample(question, [str(v) for v in path[1:]], str(graph.target), meta)


def _path_of_steps(graph: Graph, example: ReasoningExample, where: str) -> list[int]:
    """The node path a ProsQA record's written steps walk, checked against its edges."""
    from latentcot.data.generators.prosqa import FACT  # not at the top: the generators import this module

    index = {s: i for i, s in enumerate(graph.symbols)}
    edges = set(graph.edges)
    path = [graph.root]
    for j, step in enumerate(example.steps):
        match = FACT.fullmatch(step.strip())
        if match is None or match[1] not in index or match[2] not in index:
            raise LatentCotError(f"{where}: steps[{j}]: {step!r} is not a fact about the graph's nodes")
        a, b = index[match[1]], index[match[2]]
        if a != path[-1] or (a, b) not in edges:
            raise LatentCotError(f"{where}: steps[{j}]: {step!r} does not continue the path from the root by an edge")
        path.append(b)
    if path[-1] != graph.target or len(path) - 1 != hops(graph):
        raise LatentCotError(f"{where}: steps: not a shortest path from the root to the target")
    return path


def to_graph_example(example: ReasoningExample, where: str = "record") -> ReasoningExample:
    """A ProsQA record (words) in graph form: the edges in file order, the candidates in the
    question's order, the written steps' path. A record already in graph form is returned as is."""
    if is_graph_form(example):
        graph_of(example, where)
        return example
    graph = graph_of(example, where)
    match = _QUERY.search(example.question)
    if match is None:
        raise LatentCotError(f"{where}: question: does not end in 'Is NAME a X or Y?'")
    target_first = match[2] == graph.symbols[graph.target]
    question = render_question(graph, range(len(graph.edges)), target_first)
    return _graph_example(graph, question, _path_of_steps(graph, example, where))


def to_word_example(example: ReasoningExample, where: str = "record") -> ReasoningExample:
    """Back from graph form to a ProsQA record in words: one fact per edge in ``edges`` order, the
    question with the candidates in the graph question's order, the path as written steps."""
    from latentcot.data.generators.prosqa import fact  # not at the top: the generators import this module

    graph = graph_of(example, where)
    name = graph.symbols
    match = _GRAPH_QUESTION.fullmatch(example.question)
    if match is None:
        raise LatentCotError(f"{where}: question: not in graph form ('s t | … [Q] c1 c2 [R] root')")
    first, second = int(match[1]), int(match[2])
    facts = " ".join(fact(name, a, b) for a, b in graph.edges)
    question = f"{facts} Is {name[graph.root]} a {name[first]} or {name[second]}?"
    path = [graph.root, *(int(s) for s in example.steps)]
    steps = [fact(name, a, b) for a, b in zip(path, path[1:])]
    meta = {**graph.fields(), "_key_order": ["question", "answer", "steps", *GRAPH_FIELDS]}
    return ReasoningExample(question, steps, f"{name[graph.root]} is a {name[graph.target]}.", meta)


def to_graph_examples(examples: Sequence[ReasoningExample], max_hops: int = 0, where: str = "data") -> list[ReasoningExample]:
    """Every record in graph form, keeping those of at most ``max_hops`` hops (0 keeps all)."""
    out = [to_graph_example(ex, f"{where}: record {i}") for i, ex in enumerate(examples)]
    return [ex for ex in out if not max_hops or ex.meta["hops"] <= max_hops]


def random_shortest_path(graph: Graph, levels: list[list[int]], generator: torch.Generator | None = None) -> list[int]:
    """A uniformly drawn edge at each level of ``optimal_levels``: a random shortest path."""
    import torch

    children = graph.children()
    path = [graph.root]
    for level in levels[1:]:
        options = [v for v in level if v in children[path[-1]]]
        path.append(options[int(torch.randint(len(options), (), generator=generator))])
    return path


def rerender(example: ReasoningExample, generator: torch.Generator | None = None) -> ReasoningExample:
    """The record with a fresh edge order, candidate order and shortest path (torch RNG)."""
    import torch

    graph = graph_of(example)
    order = torch.randperm(len(graph.edges), generator=generator).tolist()
    target_first = bool(torch.randint(2, (), generator=generator))
    path = random_shortest_path(graph, optimal_levels(graph), generator)
    return _graph_example(graph, render_question(graph, order, target_first), path)


class GraphViews(Sequence[ReasoningExample]):
    """Records in graph form, re-rendered (:func:`rerender`) each time one is read.

    Reads draw from the global torch RNG, which the trainer seeds and checkpoints, so a resumed
    run sees the same renderings as an uninterrupted one.
    """

    def __init__(self, examples: Sequence[ReasoningExample]):
        self.examples = list(examples)

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> ReasoningExample:  # type: ignore[override]
        return rerender(self.examples[index])

    def __iter__(self) -> Iterator[ReasoningExample]:
        return (self[i] for i in range(len(self)))


def example_from_question(question: str) -> ReasoningExample:
    """A graph-form record rebuilt from its question alone (node ``i`` named ``"i"``): the target is
    the candidate reachable from the root. For looking at one question someone typed in.

    Raises:
        LatentCotError: not a graph question, or not exactly one candidate reachable.
    """
    match = _GRAPH_QUESTION.fullmatch(question.strip())
    if match is None:
        raise LatentCotError(f"question {question[:60]!r}…: not in graph form ('s t | … [Q] c1 c2 [R] root')")
    edges = [[int(a), int(b)] for a, b in re.findall(r"(\d+) (\d+)", question.split("[Q]")[0])]
    c1, c2, root = int(match[1]), int(match[2]), int(match[3])
    n = 1 + max([c1, c2, root, *(v for e in edges for v in e)])
    children: list[list[int]] = [[] for _ in range(n)]
    for a, b in edges:
        children[a].append(b)
    dist = _bfs(children, root)
    reachable = [c for c in (c1, c2) if dist[c] > 0]
    if len(reachable) != 1:
        raise LatentCotError(f"question: {len(reachable)} of the candidates {c1}, {c2} are reachable from {root}; need one")
    target = reachable[0]
    meta = {"idx_to_symbol": [str(i) for i in range(n)], "edges": edges, "root": root, "target": target,
            "neg_target": c2 if target == c1 else c1, "hops": dist[target]}
    return ReasoningExample(question.strip(), [], str(target), meta)


def spread_ids(example: ReasoningExample, rng: random.Random, id_range: int) -> ReasoningExample:
    """The graph question with its node ids spread over ``0 .. id_range - 1``: nodes 0 and 1 (the two
    persons) keep their ids, the others take a random increasing subset of ``2 .. id_range - 1`` in
    their order (so ids stay topological, as in the real file); unused ids are nodes without edges.
    Small graphs then use every id a large one does, so a model trained on them has seen (and
    trained the embedding of) every node id of the real file."""
    graph = graph_of(example)
    n = len(graph.symbols)
    if id_range < n:
        raise LatentCotError(f"prosqa_graph: id_range {id_range} is below the graph's {n} nodes")
    new = [0, 1, *sorted(rng.sample(range(2, id_range), n - 2))]
    symbols = [f"_{i}" for i in range(id_range)]
    for old, name in enumerate(graph.symbols):
        symbols[new[old]] = name
    spread = Graph(tuple(symbols), tuple((new[a], new[b]) for a, b in graph.edges), new[graph.root],
                   new[graph.target], new[graph.neg_target])
    match = _GRAPH_QUESTION.fullmatch(example.question)
    assert match is not None  # generated records are in graph form
    question = render_question(spread, range(len(graph.edges)), int(match[1]) == graph.target)
    path = [new[v] for v in [graph.root, *(int(s) for s in example.steps)]]
    return _graph_example(spread, question, path)


def generate(n: int, seed: int, max_hops: int = 4, min_nodes: int = 15, max_nodes: int = 26,
             distractor: str = "real", id_range: int = 0, matched_fraction: float = 0.5) -> list[ReasoningExample]:
    """``n`` generated ProsQA graphs of at most ``max_hops`` hops, in graph form.

    Args:
        n: number of records.
        seed: the seed (same seed, same records).
        max_hops: longest shortest path kept (the paper keeps ≤ 4; 0 keeps all).
        min_nodes, max_nodes: the range of graph sizes before the two answer leaves are added (the
            defaults match the real file; smaller graphs give shorter, easier questions).
        distractor: ``real`` (the distractor 1-4 steps below the other person, as in the real
            file) or ``matched`` (as many steps below it as the target below the root; see
            ``generators.prosqa.sample``), or ``mixed``: each record ``matched`` with probability
            ``matched_fraction``, ``real`` otherwise (the search taught on the matched ones, the real
            file's shape kept on the rest).
        matched_fraction: the share of ``matched`` records when ``distractor`` is ``mixed``.
        id_range: 0 numbers a graph's nodes ``0 .. nodes - 1`` (as the real file does); a number
            spreads them over ``0 .. id_range - 1`` (:func:`spread_ids`; 28 covers every id of the
            real validation file), so small training graphs teach every node id large ones use.
    """
    from latentcot.data.generators import prosqa

    if not 4 <= min_nodes <= max_nodes or max_nodes > 60:
        raise LatentCotError(f"prosqa_graph: need 4 <= min_nodes <= max_nodes <= 60, got {min_nodes}, {max_nodes}")
    if distractor not in (*prosqa.DISTRACTORS, "mixed"):
        raise LatentCotError(f"prosqa_graph: distractor must be one of {', '.join(prosqa.DISTRACTORS)}, mixed, got {distractor!r}")
    if distractor == "mixed" and not 0.0 <= matched_fraction <= 1.0:
        raise LatentCotError(f"prosqa_graph: matched_fraction must be in [0, 1], got {matched_fraction}")
    if id_range and not max_nodes + 2 <= id_range <= 62:
        raise LatentCotError(f"prosqa_graph: id_range must be 0 or in [max_nodes + 2, 62] = [{max_nodes + 2}, 62], got {id_range}")
    rng = random.Random(seed)
    out: list[ReasoningExample] = []
    while len(out) < n:
        kind = distractor if distractor != "mixed" else ("matched" if rng.random() < matched_fraction else "real")
        ex = to_graph_example(prosqa.sample(rng, (min_nodes, max_nodes), kind))
        if not max_hops or ex.meta["hops"] <= max_hops:
            out.append(spread_ids(ex, rng, id_range) if id_range else ex)
    return out


def check(example: ReasoningExample) -> bool:
    """True when the record is a consistent graph question: the answer is the target, the steps a
    shortest path to it along edges, and the question renders this graph."""
    try:
        graph = graph_of(example)
    except LatentCotError:
        return False
    match = _GRAPH_QUESTION.fullmatch(example.question)
    if match is None or {int(match[1]), int(match[2])} != {graph.target, graph.neg_target}:
        return False
    if int(match[3]) != graph.root or example.answer != str(graph.target):
        return False
    written = re.findall(r"(\d+) (\d+)", example.question.split(" [Q] ")[0])
    if sorted((int(a), int(b)) for a, b in written) != sorted(graph.edges):
        return False
    path = [graph.root, *(int(s) for s in example.steps if s.isdigit())]
    edges = set(graph.edges)
    return (len(path) == len(example.steps) + 1 and path[-1] == graph.target
            and len(path) - 1 == hops(graph) and all((a, b) in edges for a, b in zip(path, path[1:])))
