"""ProsQA as a graph: the graph form, its frontier sets, the frontier curriculum, the superposition look."""

import json
import re

import pytest
import torch

from latentcot.data import graph as G
from latentcot.data.formats import read_examples
from latentcot.data.generators import prosqa
from latentcot.data.paths import data_dir
from latentcot.data.record import ReasoningExample
from latentcot.data.tokenizer import train_word_tokenizer
from latentcot.errors import LatentCotError
from latentcot.eval.answers import is_correct
from latentcot.eval.tts import sample_answers
from latentcot.latent.diagnostics import SUPERPOSITION_GROUPS, plot_superposition, superposition
from latentcot.latent.sampling import ThoughtSampler
from latentcot.methods import build_method, method_config
from latentcot.methods.sequences import answer_ids, encode, extract_answer
from latentcot.models import build_preset

torch.set_num_threads(1)

DATA = data_dir(None)
REAL = DATA / "prosqa" / "prosqa_valid.json" if DATA else None
needs_real = pytest.mark.skipif(REAL is None or not REAL.is_file(), reason="prosqa_valid.json not in the data directory")


def _facts(question: str) -> set[str]:
    return {f.strip() for f in re.findall(r"[^.?]+\.", question)}


@needs_real
def test_real_validation_file_round_trips_through_graph_form():
    words = read_examples(REAL)
    graphs = G.to_graph_examples(words, where=str(REAL))
    assert len(graphs) == len(words) == 300
    assert sum(g.meta["hops"] <= 4 for g in graphs) == 257  # the reference's <= 4 hop validation split
    for word, graph in zip(words, graphs):
        assert G.check(graph)
        back = G.to_word_example(graph)
        assert back.answer == word.answer and back.steps == word.steps
        assert _facts(back.question) == _facts(word.question)
        assert back.question.rsplit(". ", 1)[-1] == word.question.rsplit(". ", 1)[-1]  # same query, same order
        assert prosqa.check(back)
        assert G.to_graph_example(back) == graph  # exact


def _paths(graph: G.Graph) -> list[list[int]]:
    """Every simple root->target path, by brute force."""
    children = graph.children()
    out, stack = [], [[graph.root]]
    while stack:
        path = stack.pop()
        if path[-1] == graph.target:
            out.append(path)
            continue
        stack.extend(path + [c] for c in children[path[-1]] if c not in path)
    return out


def test_frontier_sets_match_brute_force():
    for ex in G.generate(40, seed=3, max_hops=0):
        graph = G.graph_of(ex)
        paths = _paths(graph)
        shortest = min(len(p) for p in paths)
        assert ex.meta["hops"] == G.hops(graph) == shortest - 1
        levels = G.optimal_levels(graph)
        want = [sorted({p[i] for p in paths if len(p) == shortest}) for i in range(shortest)]
        assert levels == want
        # walks of exactly i edges, by powers of the adjacency matrix
        n = len(graph.symbols)
        adjacency = torch.zeros(n, n, dtype=torch.long)
        for a, b in graph.edges:
            adjacency[a, b] = 1
        frontiers = G.walk_frontiers(graph, 4)
        power = torch.eye(n, dtype=torch.long)
        for i in range(5):
            assert frontiers[i] == set(torch.nonzero(power[graph.root]).flatten().tolist())
            power = power @ adjacency
        groups = G.node_groups(graph, 2)
        assert groups["optimal"] <= groups["frontier"] <= groups["reachable"]
        assert not groups["reachable"] & groups["unreachable"]
        assert groups["mirror"] <= groups["unreachable"]


def test_mirror_group_is_the_other_persons_frontier():
    # root 0: 0->1->2->3 (target 3); another person 4: 4->5->6 and 4->6 (distractor 6), 4->7->8
    ex = _record(idx_to_symbol=["Tom", "a", "b", "c", "Sam", "d", "e", "f", "g"],
                 edges=[[0, 1], [1, 2], [2, 3], [4, 5], [5, 6], [4, 6], [4, 7], [7, 8]], target=3, neg_target=6)
    graph = G.graph_of(ex)
    assert [G.node_groups(graph, i)["mirror"] for i in (1, 2, 3)] == [{5, 6, 7}, {8}, set()]
    assert G.node_groups(graph, 1)["frontier"] == {1}


def _record(**changes):
    meta = {"idx_to_symbol": ["Tom", "a", "b", "c", "Sam", "d"], "edges": [[0, 1], [1, 2], [2, 3], [4, 5]],
            "root": 0, "target": 3, "neg_target": 5}
    meta.update(changes)
    steps = ["Tom is a a.", "Every a is a b.", "Every b is a c."]
    return ReasoningExample("Tom is a a. Sam is a d. Is Tom a c or d?", steps, "Tom is a c.", meta)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"edges": [[0, 1], [1, 9]]}, "edges[1]: node 9 is past idx_to_symbol"),
        ({"target": 5, "neg_target": 3}, "target: node 5 is not reachable"),
        ({"edges": [[0, 1], [1, 2], [2, 3], [4, 5], [3, 5]]}, "neg_target: node 5 is reachable"),
        ({"edges": [[0, 1], [1, 1]]}, "edges[1]: a self-loop"),
        ({"root": "0"}, "root: must be a node index"),
        ({"edges": [[0, 1, 2]]}, "edges[0]: must be a [parent, child] pair"),
    ],
)
def test_bad_graphs_are_named(changes, message):
    with pytest.raises(LatentCotError, match=re.escape("file.json: record 7: ") + ".*" + re.escape(message)):
        G.graph_of(_record(**changes), "file.json: record 7")


def test_missing_graph_field_is_named():
    ex = _record()
    del ex.meta["edges"]
    with pytest.raises(LatentCotError, match="record 2: missing graph field 'edges'"):
        G.to_graph_examples([_record(), _record(), ex])


def test_generated_graphs_are_consistent_and_filtered():
    examples = G.generate(300, seed=0, max_hops=4)
    assert all(G.check(ex) for ex in examples)
    assert {ex.meta["hops"] for ex in examples} <= {3, 4}
    assert G.generate(5, seed=1) == G.generate(5, seed=1)
    # the generator's root out-degree is near the real file's 2.92 (it was 4.78)
    degree = sum(sum(a == ex.meta["root"] for a, _ in ex.meta["edges"]) for ex in examples) / len(examples)
    assert 2.3 < degree < 3.3


def test_id_range_spreads_node_ids_and_keeps_the_graph():
    """``id_range``: the same graph with its ids spread over 0..id_range-1 (persons keep 0 and 1,
    order kept): renumbering the used ids in order gives back the compact record exactly; over many
    small graphs every id of the range is used; a range below the graph size is refused."""
    for seed in range(20):
        compact = G.generate(1, seed=seed, min_nodes=8, max_nodes=12, distractor="matched")[0]
        spread = G.generate(1, seed=seed, min_nodes=8, max_nodes=12, distractor="matched", id_range=28)[0]
        assert G.check(spread) and len(spread.meta["idx_to_symbol"]) == 28
        used = sorted({0, 1} | {v for e in spread.meta["edges"] for v in e})
        back = {v: i for i, v in enumerate(used)}
        assert [[back[a], back[b]] for a, b in spread.meta["edges"]] == compact.meta["edges"]
        assert [str(back[int(v)]) for v in spread.steps] == compact.steps
        assert back[int(spread.answer)] == int(compact.answer) and spread.meta["hops"] == compact.meta["hops"]
        assert spread.question != compact.question
    many = G.generate(200, seed=3, min_nodes=8, max_nodes=12, id_range=28)
    assert {v for ex in many for e in ex.meta["edges"] for v in e} == set(range(28))
    with pytest.raises(LatentCotError, match="id_range"):
        G.generate(1, seed=0, min_nodes=8, max_nodes=12, id_range=10)


def _local_rule_score(examples: list[ReasoningExample]) -> float:
    """Accuracy of the 2-step rule, a question it makes no guess on scored as a coin flip."""
    graphs = [G.graph_of(ex) for ex in examples]
    return sum({None: 0.5, g.target: 1.0}.get(G.local_guess(g), 0.0) for g in graphs) / len(graphs)


def test_local_guess_reads_two_steps_above_the_candidates():
    # 0 is the root, 5 another person: 0->1->2->3->4 (target 4), 5->6 (distractor 6)
    ex = _record(idx_to_symbol=["Tom", "a", "b", "c", "d", "Sam", "e"], edges=[[0, 1], [1, 2], [2, 3], [3, 4], [5, 6]],
                 target=4, neg_target=6)
    graph = G.graph_of(ex)
    assert [G.other_person_distances(graph)[v] for v in (4, 6, 5)] == [-1, 1, 0]
    assert G.local_guess(graph) == 4 and G.local_guess(graph, steps=0) is None


def test_matched_distractor_removes_the_local_shortcut():
    real = G.generate(300, seed=0, min_nodes=8, max_nodes=12)
    matched = G.generate(300, seed=0, min_nodes=8, max_nodes=12, distractor="matched")
    assert all(G.check(ex) for ex in matched) and {ex.meta["hops"] for ex in matched} <= {3, 4}
    # the real file's distractor depths let a 2-step look above the candidates answer most questions
    assert _local_rule_score(real) > 0.9
    assert 0.45 < _local_rule_score(matched) < 0.55
    # matched: another person is as far above the distractor as the root above the target (a few
    # extra persons, as in the real graphs, sit closer)
    graphs = [G.graph_of(ex) for ex in matched]
    same = [G.other_person_distances(g)[g.neg_target] == ex.meta["hops"] for g, ex in zip(graphs, matched)]
    assert sum(same) / len(same) > 0.95
    with pytest.raises(LatentCotError, match="distractor must be one of real, matched, mixed, got 'far'"):
        G.generate(1, seed=0, distractor="far")


def test_mixed_distractor_draws_both_kinds_in_proportion():
    mixed = G.generate(400, seed=0, min_nodes=8, max_nodes=12, distractor="mixed", matched_fraction=0.25)
    assert all(G.check(ex) for ex in mixed)
    assert mixed == G.generate(400, seed=0, min_nodes=8, max_nodes=12, distractor="mixed", matched_fraction=0.25)
    # the local rule answers the real-shaped records (> 0.9) and guesses on the matched ones (~0.5)
    assert 0.75 < _local_rule_score(mixed) < 0.9
    assert _local_rule_score(G.generate(300, seed=0, min_nodes=8, max_nodes=12, distractor="mixed",
                                        matched_fraction=1.0)) < 0.55
    with pytest.raises(LatentCotError, match="matched_fraction must be in"):
        G.generate(1, seed=0, distractor="mixed", matched_fraction=1.5)


def test_rerender_shuffles_but_keeps_the_question():
    ex = G.generate(1, seed=2)[0]
    torch.manual_seed(0)
    views = [G.rerender(ex) for _ in range(6)]
    assert all(G.check(v) and G.graph_of(v) == G.graph_of(ex) for v in views)
    assert len({v.question for v in views}) > 1
    torch.manual_seed(0)
    assert [G.rerender(ex) for _ in range(6)] == views  # the torch seed decides


def _coconut(examples, **options):
    tokenizer = train_word_tokenizer(examples, split_punctuation=False)
    torch.manual_seed(0)
    backbone = build_preset("micro", len(tokenizer))
    cfg = method_config("coconut", {"supervision": "frontier", "max_latent_stage": 4, **options}, where="test")
    return build_method("coconut", cfg, backbone, tokenizer)


@pytest.mark.parametrize("markers", ["off", "on"])
def test_frontier_curriculum_targets_each_stage(markers):
    examples = G.generate(12, seed=4)
    method = _coconut(examples, markers=markers)
    t, tok = method.tokens, method.tokenizer
    separator = encode(tok, "###")
    for stage in range(6):
        torch.manual_seed(stage)
        batch = method.collate(examples, stage)
        for ex, ids, labels in zip(examples, batch["input_ids"], batch["labels"]):
            h = ex.meta["hops"]
            latents = int((ids == t.latent).sum())
            labelled = (labels != -100).nonzero().flatten()
            target = labels[labelled].tolist()
            assert bool((ids == t.bot).any()) == bool((ids == t.eot).any()) == (markers == "on")
            before = int(ids[labelled[0] - 1])  # the position whose output names the first label
            if stage < h:
                assert latents == stage
                allowed = {tuple(encode(tok, str(v))) for v in G.optimal_levels(G.graph_of(ex))[stage + 1]}
                assert tuple(target) in allowed
                if markers == "off":  # read at the last thought, or at the root itself at stage 0
                    root = encode(tok, str(ex.meta["root"]))[0]
                    assert before == (t.latent if stage else root)
                else:
                    assert before == t.eot
            else:
                assert latents == 4  # pad_latent_to_max: always max_latent_stage thoughts at the answer stage
                if markers == "off":  # '###' is given after the thoughts, the rest is labelled
                    assert target == answer_ids(tok, ex.answer)[len(separator):] and before == separator[-1]
                else:
                    assert target == answer_ids(tok, ex.answer)


def test_walk_frontier_targets_cover_the_search_frontier():
    """``frontier_nodes: walk``: stage s names nodes at the end of (s+1)-edge walks from the root
    (checked against powers of the adjacency matrix), every one of them over enough draws, so also
    nodes off every shortest path; the default names only path nodes."""
    examples = G.generate(8, seed=4)
    walk, path = _coconut(examples, frontier_nodes="walk"), _coconut(examples)
    tok = walk.tokenizer
    off_path = 0
    for ex in examples:
        graph, h = G.graph_of(ex), ex.meta["hops"]
        n = len(graph.symbols)
        adjacency = torch.zeros(n, n, dtype=torch.long)
        for s, t in graph.edges:
            adjacency[s, t] = 1
        power = torch.eye(n, dtype=torch.long)
        for stage in range(h):
            power = power @ adjacency
            frontier = set(torch.nonzero(power[graph.root]).flatten().tolist())
            seen, seen_path = set(), set()
            for draw in range(40 * len(frontier)):
                torch.manual_seed(draw)
                seen.add(int(tok.decode(walk.collate([ex], stage)["labels"][0][-1:]).strip()))
                torch.manual_seed(draw)
                seen_path.add(int(tok.decode(path.collate([ex], stage)["labels"][0][-1:]).strip()))
            assert seen == frontier
            assert seen_path == set(G.optimal_levels(graph)[stage + 1]) <= frontier
            off_path += len(frontier - seen_path)
    assert off_path > 0  # the two differ on these graphs
    with pytest.raises(LatentCotError, match="frontier_nodes"):
        method_config("coconut", {"frontier_nodes": "walk"}, where="test")


def test_soft_thoughts_are_the_head_distribution_over_embeddings():
    """``thought_input: soft``: each fed-back thought is softmax(lm_head(h)) @ E of the position before
    it, so the first is the root position's next-token distribution over the embedding table; and
    gradients pass through it to the hidden state."""
    examples = G.generate(4, seed=9)
    method = _coconut(examples, markers="off", thought_input="soft").eval()
    out = method.reason([ex.question for ex in examples], max_new_tokens=3)
    ids = torch.tensor([encode(method.tokenizer, examples[0].question)])
    with torch.no_grad():
        logits = method.backbone(input_ids=ids).logits[0, -1]
    want = torch.softmax(logits, -1) @ method.backbone.get_input_embeddings().weight
    torch.testing.assert_close(out.latents[0, 0], want, atol=1e-5, rtol=1e-4)
    hidden = _coconut(examples, markers="off").eval().reason([examples[0].question], max_new_tokens=3)
    assert not torch.allclose(hidden.latents[0, 0], out.latents[0, 0], atol=1e-3)
    h = torch.randn(3, method.backbone.config.hidden_size, requires_grad=True)
    (method.project(h) * torch.randn(3, h.shape[1])).sum().backward()  # training backpropagates through it
    assert h.grad is not None and float(h.grad.abs().sum()) > 0


def test_teacher_forcing_feeds_each_thought_its_reachable_set():
    """``teacher_forcing`` with ``frontier_nodes: reach``: thought i is fed the mean embedding of the
    nodes within i edges of the root (checked against breadth-first distances), the label read before
    it is one of them, and the loss is a plain forward over those embeddings (computed by hand here)."""
    examples = G.generate(3, seed=11)
    method = _coconut(examples, thought_input="soft", teacher_forcing=True, frontier_nodes="reach")
    assert method.num_stages() == 1  # no curriculum: every row at its answer stage from the first step
    tok, table = method.tokenizer, method.backbone.get_input_embeddings().weight
    torch.manual_seed(0)
    batch = method.collate(examples, 0)
    ids, labels = batch["input_ids"], batch["labels"]
    first = int((ids == method.tokens.latent).nonzero()[:, 1].min())
    embeds = table[ids].detach().clone()
    for r, ex in enumerate(examples):
        d = G.distances(G.graph_of(ex))
        for i in range(1, 5):
            want = sorted(v for v, dv in enumerate(d) if 0 <= dv <= i)
            node_ids = [encode(tok, str(v))[0] for v in want]
            assert int(labels[r, first + i - 1]) in node_ids
            embeds[r, first + i - 1] = table[node_ids].detach().mean(0)
        assert extract_answer(tok.decode(labels[r][labels[r] != -100][-2:-1])) == ex.answer
    with torch.no_grad():
        mask = batch["attention_mask"]
        logits = method.backbone(inputs_embeds=embeds, attention_mask=mask,
                                 position_ids=(mask.cumsum(1) - 1).clamp_min(0)).logits
        want = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten())
        got = method(batch).loss
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
    with pytest.raises(LatentCotError, match="teacher_forcing"):
        method_config("coconut", {"supervision": "frontier", "teacher_forcing": True}, where="test")


def test_bare_layout_reasons_with_thoughts_then_the_separator():
    examples = G.generate(4, seed=9)
    method = _coconut(examples, markers="off").eval()
    out = method.reason([ex.question for ex in examples], max_new_tokens=3)
    assert out.latents is not None and out.latents.shape[1] == 4
    assert all(text.startswith("###") for text in out.texts)
    # the first thought is the root position's output: the question alone, run once
    ids = torch.tensor([encode(method.tokenizer, examples[0].question)])
    with torch.no_grad():
        h = method.backbone(input_ids=ids, output_hidden_states=True).hidden_states[-1][0, -1]
    assert torch.allclose(out.latents[0, 0], h, atol=1e-5)
    with pytest.raises(LatentCotError, match="markers"):
        method_config("coconut", {"markers": "off"}, where="test")


def test_test_time_sampling_drives_the_bare_layout():
    """One greedy sample per question equals ``reason`` (thoughts after the question, '###' given);
    noise makes the samples differ."""
    examples = G.generate(4, seed=9)
    method = _coconut(examples, markers="off").eval()
    questions = [ex.question for ex in examples]
    greedy = method.reason(questions, max_new_tokens=3)
    out = sample_answers(method, questions, 2, max_new_tokens=3)
    assert out.texts == [t for t in greedy.texts for _ in range(2)] and all(t.startswith("###") for t in out.texts)
    assert out.answers == [extract_answer(t) for t in out.texts]
    torch.testing.assert_close(out.samples.thoughts, greedy.latents.repeat_interleave(2, 0))
    noisy = sample_answers(method, questions, 2, ThoughtSampler("noise", noise=1.0, seed=1), max_new_tokens=3)
    assert not torch.allclose(noisy.samples.thoughts[0::2], noisy.samples.thoughts[1::2])


def test_gumbel_sampler_draws_from_the_soft_thoughts_distribution():
    """``--sampler gumbel``: the Gumbel-max property (at a temperature near 0 each thought is one token's
    embedding, drawn with the head's probabilities), the same seed gives the same samples and another
    seed others, and a hidden-state method is refused by name."""
    from latentcot.latent.loop import soft_tokens

    examples = G.generate(4, seed=9)
    method = _coconut(examples, markers="off", thought_input="soft").eval()
    soft = soft_tokens(method.backbone)
    table = method.backbone.get_input_embeddings().weight.detach()
    h = torch.randn(1, method.backbone.config.hidden_size).expand(20000, -1)
    with torch.no_grad():
        probs = torch.softmax(method.backbone.get_output_embeddings()(h[:1]), -1)[0]
        torch.manual_seed(0)
        drawn = soft.sample(h, temperature=1e-4)
    picked = torch.cdist(drawn, table).argmin(1)
    one = (drawn - table[picked]).abs().amax(1) < 1e-4  # one token's embedding (bar near-ties of two draws)
    assert float(one.float().mean()) > 0.995
    # Gumbel-max: token i drawn with probability p_i, so the draws average to the soft thought p @ E
    want = probs @ table
    assert float((drawn.mean(0) - want).norm() / want.norm()) < 0.05
    questions = [ex.question for ex in examples]
    runs = [sample_answers(method, questions, 3, ThoughtSampler("gumbel", temperature=1.0, seed=s), max_new_tokens=3)
            for s in (1, 1, 2)]
    torch.testing.assert_close(runs[0].samples.thoughts, runs[1].samples.thoughts)
    assert not torch.allclose(runs[0].samples.thoughts, runs[2].samples.thoughts)
    assert not torch.allclose(runs[0].samples.thoughts[0::3], runs[0].samples.thoughts[1::3])
    hidden = _coconut(examples, markers="off").eval()
    with pytest.raises(LatentCotError, match="gumbel.*soft"):
        sample_answers(hidden, questions, 2, ThoughtSampler("gumbel"), max_new_tokens=3)
    with pytest.raises(LatentCotError, match="temperature"):
        ThoughtSampler("gumbel", temperature=0.0)
    # the noise's scale (temperature 1): 0 is the greedy soft thought, a small one stays nearer to it than the full draw
    greedy = sample_answers(method, questions, 1, None, max_new_tokens=3)
    zero = sample_answers(method, questions, 2, ThoughtSampler("gumbel", gumbel_scale=0.0, seed=1), max_new_tokens=3)
    torch.testing.assert_close(zero.samples.thoughts, greedy.samples.thoughts.repeat_interleave(2, 0))

    def distance_to_greedy(scale: float) -> float:
        drawn = sample_answers(method, questions, 2, ThoughtSampler("gumbel", gumbel_scale=scale, seed=1), max_new_tokens=3)
        return float((drawn.samples.thoughts - zero.samples.thoughts).norm())

    assert 0 < distance_to_greedy(0.1) < distance_to_greedy(1.0)
    with pytest.raises(LatentCotError, match="gumbel_scale"):
        ThoughtSampler("gumbel", gumbel_scale=-1.0)


def test_frontier_uniform_stage_never_passes_the_schedule():
    examples = G.generate(64, seed=5)
    method = _coconut(examples, uniform_prob=1.0)
    torch.manual_seed(0)
    batch = method.collate(examples, 2)
    latents = (batch["input_ids"] == method.tokens.latent).sum(1)
    assert set(latents.tolist()) == {0, 1, 2}  # drawn in [0, min(stage, hops)], as the reference does


def test_graph_answers_compare_node_ids():
    assert is_correct("prosqa_graph", "16", "16") and not is_correct("prosqa_graph", "1", "16")


def test_superposition_groups_and_plot(tmp_path):
    examples = G.generate(6, seed=6)
    method = _coconut(examples)
    out = superposition(method.eval(), examples, batch_size=4)
    assert [row["thought"] for row in out["thoughts"]] == [1, 2, 3, 4][: len(out["thoughts"])]
    first = out["thoughts"][0]
    assert first["questions"] == 6 and set(first["mean"]) == set(SUPERPOSITION_GROUPS)
    # by hand for one question and thought 1: the embedding rows of its frontier nodes
    thoughts = method.reason([examples[0].question], max_new_tokens=1).latents[0]
    graph = G.graph_of(examples[0])
    frontier = G.node_groups(graph, 1)["frontier"]
    emb = method.backbone.get_input_embeddings().weight
    ids = [method.tokenizer.convert_tokens_to_ids(method.tokenizer.tokenize(str(v)))[0] for v in frontier]
    want = float((emb[ids] @ thoughts[0]).mean().detach())
    assert out["per_question"][0][0]["frontier"] == pytest.approx(want, rel=1e-4, abs=1e-5)
    plot_superposition(out["per_question"][0], str(tmp_path / "sp.png"))
    assert (tmp_path / "sp.png").stat().st_size > 1000


def test_shallow_presets_are_two_layers_eight_heads():
    from latentcot.models.presets import build_preset as build

    model = build("shallow-128", 40)
    assert (model.config.n_layer, model.config.n_embd, model.config.n_head) == (2, 128, 8)


def test_graph_tokenizer_keeps_symbols_whole():
    examples = G.generate(4, seed=7)
    tokenizer = train_word_tokenizer(examples, split_punctuation=False)
    ids = encode(tokenizer, examples[0].question)
    edges = len(examples[0].meta["edges"])
    assert len(ids) == 3 * edges - 1 + 5  # "s t" per edge, "|" between, then "[Q] c1 c2 [R] root"
    assert tokenizer.decode(ids) == examples[0].question


@pytest.mark.recipe
def test_graph_recipe_trains_evaluates_and_inspects(tmp_path, capsys, monkeypatch):
    """The CLI end to end on the graph task: generated training graphs re-rendered every read, a
    written word-form ProsQA file as held-out data (converted and hop-filtered), the superposition
    look through `inspect`."""
    from latentcot.cli import main as cli
    from latentcot.data.formats import write_examples

    words = [G.to_word_example(ex) for ex in G.generate(12, seed=11, max_hops=0)]
    write_examples(words, tmp_path / "valid.json")
    out = tmp_path / "run"
    assert cli(["train", "configs/lm/tiny/graph_small_coconut.yaml", f"out_dir={out}", "data.train_size=32",
                f"data.eval_file={tmp_path / 'valid.json'}", "train.batch_size=8", "train.max_steps=6",
                "train.eval_every=3", "train.save_every=0", "method.epochs_per_stage=1"]) == 0
    result = json.loads((out / "eval.json").read_text())
    assert result["n"] == sum(G.to_graph_example(w).meta["hops"] <= 4 for w in words)
    assert all(G.is_graph_form(ReasoningExample(p["question"], [], "")) for p in result["predictions"])
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "eval/accuracy" in r] == [3, 6]
    # `latentcot eval` on the word-form file renders the graphs as the run reads them: same questions, same score
    assert cli(["eval", str(out), "--data", str(tmp_path / "valid.json"), "--out", str(tmp_path / "again.json")]) == 0
    again = json.loads((tmp_path / "again.json").read_text())
    assert [p["question"] for p in again["predictions"]] == [p["question"] for p in result["predictions"]]
    assert again["accuracy"] == result["accuracy"]
    capsys.readouterr()
    question = G.generate(1, seed=12)[0].question
    assert cli(["inspect", str(out), question, "--plot", str(tmp_path / "bars.png")]) == 0
    printed = capsys.readouterr().out
    assert "| thought | questions | optimal | frontier | reachable | unreachable |" in printed
    assert (tmp_path / "bars.png").stat().st_size > 1000
