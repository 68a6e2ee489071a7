"""ProntoQA-style 5-hop deductions over a fictional ontology, True/False answers.

ProntoQA (Saparov & He 2023, https://arxiv.org/abs/2210.01240; the 5-hop fictional split used by
Coconut, https://arxiv.org/abs/2412.06769). The entity is a ``c1``; ``c1 -> ... -> c5`` is a
chain of "is a" facts and ``c5`` has (or lacks) a property; the question asks whether the entity
has it. Distractors, as in the real file: every chain concept has its own property and child
concepts, the entity also belongs to an unrelated type, and one isolated concept states the
opposite property. 23 facts in shuffled order, the two entity facts, then the query; 6 steps.
Records carry the real file's ``idx_to_symbol`` (entity, chain, the rest sorted), ``edges``,
``root`` 0, ``target`` 5, ``neg_target`` 6 and ``chain_concepts``.
"""

from __future__ import annotations

import random
import re

from latentcot.data.record import ReasoningExample

NAMES = "Alex Fae Max Polly Rex Sally Sam Stella Wren".split()
CONCEPTS = (
    "brimpus dumpus gorpus grimpus impus jompus lempus lorpus numpus rompus shumpus sterpus "
    "tumpus vumpus wumpus yumpus zumpus"
).split()
# properties grouped so that one concept never gets two from the same family
FAMILIES = [f.split() for f in (
    "blue brown orange red", "large small", "hot cold temperate", "bitter sour spicy sweet",
    "earthy floral fruity", "discordant loud melodic muffled", "metallic wooden liquid",
    "opaque transparent", "bright dull luminous", "happy angry feisty kind mean shy amenable aggressive nervous",
    "overcast rainy snowy sunny windy", "fast slow moderate",
)]
N_FACTS = 23


def _isa(rng: random.Random, a: str, b: str) -> str:
    r = rng.random()
    if r < 0.5:
        return f"{a.capitalize()}es are {b}es."
    article = "an" if b[0] in "aeiou" else "a"
    return f"{'Every' if r < 0.75 else 'Each'} {a} is {article} {b}."


def _prop(rng: random.Random, a: str, adj: str, negated: bool) -> str:
    r = rng.random()
    not_ = "not " if negated else ""
    if r < 0.5:
        return f"{a.capitalize()}es are {not_}{adj}."
    return f"{'Every' if r < 0.75 else 'Each'} {a} is {not_}{adj}."


def sample(rng: random.Random) -> ReasoningExample:
    """One ProntoQA-style record drawn with ``rng``."""
    name = rng.choice(NAMES)
    k = rng.randint(4, 6)  # child concepts hanging off the chain
    words = rng.sample(CONCEPTS, 5 + k + 3)
    chain, children, (other_type, other_child, opposite) = words[:5], words[5:5 + k], words[5 + k:]
    parents = rng.sample(chain, 5)[:k] + [rng.choice(chain) for _ in range(k - 5)]
    families = rng.sample(range(len(FAMILIES)), len(FAMILIES))
    query_family, rest = FAMILIES[families[0]], families[1:]
    query = rng.choice(query_family)
    c5_negated = rng.random() < 0.45
    facts = [_isa(rng, a, b) for a, b in zip(chain, chain[1:])]
    facts += [_isa(rng, p, c) for p, c in zip(parents, children)]
    facts.append(_isa(rng, other_type, other_child))
    answer_fact = _prop(rng, chain[4], query, c5_negated)
    facts.append(answer_fact)
    facts.append(_prop(rng, opposite, query, not c5_negated))
    # one property per concept, each from a family the query does not use; the entity's own
    # types (chain and other_type) draw distinct families so no fact contradicts another
    holders = chain[:4] + [other_type, other_child] + children + chain[:4]
    used: dict[str, set[int]] = {}
    for i, concept in enumerate(holders[: N_FACTS - len(facts)]):
        family = next(f for f in rest[i:] + rest[:i] if f not in used.setdefault(concept, set()))
        used[concept].add(family)
        facts.append(_prop(rng, concept, rng.choice(FAMILIES[family]), rng.random() < 0.4))
    chain_facts = {(a, b): f for a, b, f in zip(chain, chain[1:], facts)}
    rng.shuffle(facts)
    entity = [f"{name} is {'an' if c[0] in 'aeiou' else 'a'} {c}." for c in (chain[0], other_type)]
    rng.shuffle(entity)
    asked_negated = rng.random() < 0.54
    question = " ".join(facts + entity) + f" True or false: {name} is {'not ' if asked_negated else ''}{query}."
    steps = [f"{name} is {'an' if a[0] in 'aeiou' else 'a'} {a}. {chain_facts[a, b]}" for a, b in zip(chain, chain[1:])]
    steps.append(f"{name} is {'an' if chain[4][0] in 'aeiou' else 'a'} {chain[4]}. {answer_fact}")
    steps.append(f"{name} is {'not ' if c5_negated else ''}{query}.")
    symbols = [name, *chain, *sorted(words[5:])]
    index = {s: i for i, s in enumerate(symbols)}
    edges = [[index[a], index[b]] for a, b in [*zip(chain, chain[1:]), *zip(parents, children), (other_type, other_child)]]
    rng.shuffle(edges)
    meta = {"idx_to_symbol": symbols, "edges": edges, "root": 0, "target": 5, "neg_target": 6,
            "chain_concepts": chain}
    return ReasoningExample(question, steps, str(asked_negated == c5_negated), meta)


def generate(n: int, seed: int) -> list[ReasoningExample]:
    """``n`` ProntoQA-style records.

    Args:
        n: number of records.
        seed: the seed (same seed, same records).

    Returns:
        Records in the real ``prontoqa_valid.json`` layout.
    """
    rng = random.Random(seed)
    return [sample(rng) for _ in range(n)]


_SENTENCE = re.compile(r"(?:(?:Every|Each) (\w+) is|(\w+)es are|([A-Z]\w*) is)( an?)? (not )?(\w+)\.")


def check(example: ReasoningExample) -> bool:
    """True when forward deduction from the stated facts gives the answer, and the last step states
    the deduced property. Concepts are the words that appear after "is a"."""
    body, _, query = example.question.rpartition(" True or false: ")
    m = re.fullmatch(r"(\w+) is (not )?(\w+)\.", query)
    if m is None:
        return False
    name, asked_negated, prop = m[1], bool(m[2]), m[3]
    isa: dict[str, set[str]] = {}
    props: dict[str, dict[str, bool]] = {}
    types: set[str] = set()
    for sentence in re.findall(r"[^.]+\.", body):
        s = _SENTENCE.fullmatch(sentence.strip())
        if s is None:
            return False
        subject, negated, word = s[1] or (s[2] or "").lower(), bool(s[5]), s[6]
        if s[3] == name:
            types.add(word)
        elif s[4] or word.endswith("uses"):
            isa.setdefault(subject, set()).add(word[:-2] if word.endswith("uses") else word)
        else:
            props.setdefault(subject, {})[word] = not negated
    frontier, seen = list(types), set(types)
    for concept in frontier:  # every type the entity inherits
        for parent in isa.get(concept, ()):
            if parent not in seen:
                seen.add(parent)
                frontier.append(parent)
    values = {props[c][prop] for c in seen if prop in props.get(c, {})}
    if len(values) != 1:
        return False
    (holds,) = values
    expected_last = f"{name} is {'' if holds else 'not '}{prop}."
    return example.answer == str(holds != asked_negated) and example.steps[-1:] == [expected_last]
