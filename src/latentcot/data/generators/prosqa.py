"""ProsQA-style questions: reach a concept through a random DAG of "is a" facts.

ProsQA (Hao et al. 2024, Coconut, https://arxiv.org/abs/2412.06769) lists every edge of a random
directed acyclic graph as a sentence (``Every A is a B.`` / ``Tom is a A.``) in shuffled order
and asks ``Is Tom a X or Y?``; exactly one of X (the target) and Y (the distractor,
``neg_target``) is reachable from Tom. The steps are a shortest chain of facts from Tom to the
target. Records carry the real file's fields: ``idx_to_symbol``, ``edges`` (sorted by child),
``root``, ``target``, ``neg_target``, in the same key order.

The graph grows node by node (so indices are topological, as in the real file): persons 0 and 1
start two "sides"; each new concept takes one to five parents, mostly from one side and biased
towards the newest nodes, which gives the real file's depths (3-6 step proofs, 3.75 on
average), sizes (about 23 nodes, 36 edges) and small overlap between the two sides. The
target is a deepest leaf reachable from the root only; the distractor a leaf reachable from
the other person only.
"""

from __future__ import annotations

import bisect
import itertools
import random
import re
from collections.abc import Sequence

from latentcot.data.record import ReasoningExample

PERSONS = ("Alex Bob Carol Davis Eva Fae Gabriel Jack Max Oliver Polly Rex Sally Sam Stella Tom Wren").split()
CONCEPTS = (
    "bompus boompus brimpus chorpus dumpus felpus fompus gerpus gorpus grimpus gwompus hilpus impus "
    "jelpus jompus kerpus lempus lorpus numpus quimpus rempus rompus rorpus scrompus shumpus sterpus "
    "storpus terpus timpus tumpus vumpus worpus wumpus yerpus yimpus yumpus zhorpus zumpus"
).split()
KEY_ORDER = ["question", "answer", "steps", "idx_to_symbol", "edges", "root", "target", "neg_target"]
# number of parents of a concept node, as measured on prosqa_valid.json (in-degree 1..5)
_PARENT_COUNTS = (1, 2, 3, 4, 5)
_PARENT_WEIGHTS = (0.36, 0.33, 0.19, 0.08, 0.04)
_PARENT_CUMULATIVE = list(itertools.accumulate(_PARENT_WEIGHTS))[:-1]
_NEG_CUMULATIVE = [0.21, 0.74, 0.98]  # depth of the distractor's parent: 0, 1, 2, 3
_EXTRA_PERSON = 0.03  # chance that a new node is one more person (the real graphs have 0-4 extra)
_CROSS_SIDE = 0.06  # chance that an extra parent comes from anywhere, not the node's own side
_ROOT_SIDE = 0.57  # share of concepts grown on the root's side (the real root reaches more)
_RECENCY = 0.2
_DEPTH_CUMULATIVE = [0.36, 0.80, 0.96]  # wanted proof length 3, 4, 5, 6 (real: 41%, 44%, 12%, 2%)  # rate of the exponential over "how many nodes back" the first parent is


def fact(symbols: Sequence[str], a: int, b: int) -> str:
    """The sentence of edge a -> b: ``Tom is a X.`` for a person, ``Every X is a Y.`` otherwise."""
    head = symbols[a] if symbols[a][0].isupper() else f"Every {symbols[a]}"
    return f"{head} is a {symbols[b]}."


def _pick(rng: random.Random, items: list[int]) -> int:
    return items[int(rng.random() * len(items))]


def _parent_count(rng: random.Random) -> int:
    return bisect.bisect(_PARENT_CUMULATIVE, rng.random()) + 1


def _graph(rng: random.Random, n: int, root: int) -> tuple[list[list[int]], list[bool], list[int]]:
    """(parents, is-person, side) per node of a random DAG grown from persons 0 and 1.

    A node's side is the person whose part of the graph it grew in (-1 for extra persons); a
    few cross-side parents make the two parts overlap a little, as in the real graphs.
    """
    parents: list[list[int]] = [[], []]
    person = [True, True]
    side = [0, 1]
    by_side: list[list[int]] = [[0], [1]]
    waiting: list[int] = []  # extra persons that still need a child
    for v in range(2, n):
        if rng.random() < _EXTRA_PERSON and v < n - 3:
            parents.append([])
            person.append(True)
            side.append(-1)
            waiting.append(v)
            continue
        s = root if rng.random() < _ROOT_SIDE else 1 - root
        mine = by_side[s]
        # the newest nodes of a side are the likeliest parents: long chains, as in the real graphs
        # a draw past the side's size picks uniformly in it: clamping it to the person instead gave
        # the root an out-degree of 4.9 where the real file has 2.9
        back = int(rng.expovariate(_RECENCY))
        chosen = {mine[-1 - (back if back < len(mine) else rng.randrange(len(mine)))]}
        if waiting:
            chosen.add(waiting.pop())
        for _ in range(_parent_count(rng) - 1):
            # extra parents skip the person itself, whose out-degree stays small as in the real graphs
            if rng.random() < _CROSS_SIDE:
                chosen.add(rng.randrange(v))
            elif len(mine) > 1:
                chosen.add(mine[1 + int(rng.random() * (len(mine) - 1))])
        parents.append(list(chosen))
        person.append(False)
        side.append(s)
        mine.append(v)
    return parents, person, side


def _distances(parents: list[list[int]], source: int) -> list[int]:
    """Shortest distance from ``source`` to every node, -1 where unreachable (parents come first)."""
    dist = [-1] * len(parents)
    dist[source] = 0
    for v in range(source + 1, len(parents)):
        ds = [dist[p] for p in parents[v] if dist[p] >= 0]
        if ds:
            dist[v] = 1 + min(ds)
    return dist


def _add_leaf(rng: random.Random, parents: list[list[int]], first: int, pool: list[int]) -> int:
    """Append a leaf under ``first`` and a few more parents from ``pool``; returns its index."""
    chosen = {first}
    for _ in range(_parent_count(rng) - 1):
        chosen.add(_pick(rng, pool))
    parents.append(list(chosen))
    return len(parents) - 1


DISTRACTORS = ("real", "matched")


def sample(rng: random.Random, nodes: tuple[int, int] = (15, 26), distractor: str = "real") -> ReasoningExample:
    """One ProsQA-style record drawn with ``rng``; the graph grows to ``nodes`` (inclusive range)
    nodes before the target and distractor leaves are added (the default matches the real file).

    ``distractor`` says how far below the other person the distractor hangs: ``real`` draws the
    depth as measured on the real file (mostly 1-2 steps, while the target is 3-6 steps below the
    root, so a local look at the candidates' ancestors tells them apart: 86% of the real ≤ 4-hop
    validation questions); ``matched`` puts it exactly as many steps below the other person as the
    target is below the root, so only following the edges from the root tells them apart.
    """
    if distractor not in DISTRACTORS:
        raise ValueError(f"distractor must be one of {DISTRACTORS}, got {distractor!r}")
    while True:
        root = 1 if rng.random() < 0.65 else 0
        parents, person, _ = _graph(rng, rng.randint(*nodes), root)
        d_root, d_other = _distances(parents, root), _distances(parents, 1 - root)
        only_root = [v for v in range(len(parents)) if d_root[v] >= 0 > d_other[v]]
        only_other = [v for v in range(len(parents)) if d_other[v] >= 0 > d_root[v]]
        if not only_root or not only_other:
            continue
        # the target hangs under a root-only node of a drawn depth (as deep as the graph allows):
        # proofs of 3 to 6 steps in the real file's proportions
        depth = min(max(d_root[v] for v in only_root), 2 + bisect.bisect(_DEPTH_CUMULATIVE, rng.random()))
        if depth >= 2 and (distractor == "real" or any(d_other[v] == depth for v in only_other)):
            break
    deepest = [v for v in only_root if d_root[v] == depth]
    target = _add_leaf(rng, parents, _pick(rng, deepest), [v for v in only_root if d_root[v] >= depth])
    if distractor == "matched":  # as deep below the other person as the target below the root
        neg = _add_leaf(rng, parents, _pick(rng, [v for v in only_other if d_other[v] == depth]),
                        [v for v in only_other if d_other[v] >= depth])
    else:  # 1-4 steps below the other person (depths as measured on the real file)
        d_want = bisect.bisect(_NEG_CUMULATIVE, rng.random())
        near = [v for v in only_other if d_other[v] == d_want] or only_other
        neg = _add_leaf(rng, parents, _pick(rng, near), only_other)
    person += [False, False]
    n = len(parents)
    # place the two new leaves anywhere after their parents, keeping indices topological
    order = list(range(n - 2))
    for leaf in (target, neg):
        order.insert(rng.randint(max(2, *(order.index(p) + 1 for p in parents[leaf])), len(order)), leaf)
    new = {old: i for i, old in enumerate(order)}
    symbols = [""] * n
    names = iter(rng.sample(PERSONS, sum(person)))
    concepts = iter(rng.sample(CONCEPTS, n - sum(person)))
    for old in order:
        symbols[new[old]] = next(names) if person[old] else next(concepts)
    edges = [[new[p], new[v]] for v in order for p in sorted(parents[v], key=lambda _: rng.random())]
    # a shortest proof, walked back from the target through parents one step closer to the root
    d_root = _distances(parents, root)
    path = [target]
    while path[-1] != root:
        v = path[-1]
        path.append(_pick(rng, [p for p in parents[v] if d_root[p] == d_root[v] - 1]))
    path = [new[v] for v in reversed(path)]
    facts = [fact(symbols, a, b) for a, b in edges]
    rng.shuffle(facts)
    options = [symbols[new[target]], symbols[new[neg]]]
    rng.shuffle(options)
    name = symbols[new[root]]
    question = " ".join(facts) + f" Is {name} a {options[0]} or {options[1]}?"
    steps = [fact(symbols, a, b) for a, b in zip(path, path[1:])]
    meta = {"idx_to_symbol": symbols, "edges": edges, "root": new[root], "target": new[target],
            "neg_target": new[neg], "_key_order": KEY_ORDER}
    return ReasoningExample(question, steps, f"{name} is a {symbols[new[target]]}.", meta)


def generate(n: int, seed: int) -> list[ReasoningExample]:
    """``n`` ProsQA-style records.

    Args:
        n: number of records.
        seed: the seed (same seed, same records).

    Returns:
        Records with the real file's question/steps/answer wording and graph fields.
    """
    rng = random.Random(seed)
    return [sample(rng) for _ in range(n)]


FACT = re.compile(r"(?:Every )?(\w+) is a (\w+)\.")  # one fact sentence, read back (also by data.graph)
_QUERY = re.compile(r"Is (\w+) a (\w+) or (\w+)\?")


def check(example: ReasoningExample) -> bool:
    """True when the answer is the option reachable from the person, the other option is not,
    and the steps are a chain of stated facts from the person to the answer of shortest length."""
    body, _, query = example.question.rpartition(". ")
    match = _QUERY.fullmatch(query)
    if match is None:
        return False
    name, *options = match.groups()
    children: dict[str, set[str]] = {}
    facts = set(re.findall(r"[^.]+\.", body + "."))
    for fact in facts:
        m = FACT.fullmatch(fact.strip())
        if m is None:
            return False
        children.setdefault(m[1], set()).add(m[2])
    dist = {name: 0}
    frontier = [name]
    for node in frontier:  # breadth-first: the first distance found is the shortest
        for child in children.get(node, ()):
            if child not in dist:
                dist[child] = dist[node] + 1
                frontier.append(child)
    reachable = [o for o in options if o in dist]
    if len(reachable) != 1 or example.answer != f"{name} is a {reachable[0]}.":
        return False
    stated = {f.strip() for f in facts}
    chain = [FACT.fullmatch(s) for s in example.steps]
    if any(m is None or s not in stated for m, s in zip(chain, example.steps)):
        return False
    nodes = [name] + [m[2] for m in chain]  # type: ignore[index]
    linked = all(m[1] == prev for m, prev in zip(chain, nodes))  # type: ignore[index]
    return linked and nodes[-1] == reachable[0] and len(example.steps) == dist[reachable[0]]
