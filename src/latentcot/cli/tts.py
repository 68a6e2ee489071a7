"""Test-time scaling on the command line: the sampling flags of `latentcot eval` and
`latentcot reward` (train a Latent Reward Model on a reasoner's own samples)."""

from __future__ import annotations

import argparse
import json
from typing import Any

# latentcot.eval.tts.AGGREGATES, spelled out so building the parser imports no torch (a test checks they agree)
AGGREGATES = ("vote", "reward", "reward-vote", "signal", "signal-vote")


def add_sampling_arguments(p: argparse.ArgumentParser) -> None:
    """--samples, --sampler, --noise, --dropout, --temperature, --gumbel-scale, --seed (shared by `eval` and `reward`)."""
    p.add_argument("--samples", type=int, default=1, help="latent trajectories sampled per question (N)")
    p.add_argument("--sampler", choices=["none", "noise", "dropout", "gumbel"], default="none",
                   help="how samples differ: Gaussian noise on each fed-back thought, MC dropout in the thought passes, "
                   "or (soft-thought methods) each thought a Gumbel-softmax draw of the head's distribution")
    p.add_argument("--noise", type=float, default=0.1, help="sigma of the thought noise (--sampler noise)")
    p.add_argument("--dropout", type=float, default=0.1, help="dropout rate in the thought passes (--sampler dropout)")
    p.add_argument("--temperature", type=float, default=1.0, help="Gumbel-softmax temperature (--sampler gumbel)")
    p.add_argument("--gumbel-scale", type=float, default=1.0,
                   help="factor on the Gumbel noise, softmax((logits + s*g)/temperature) (--sampler gumbel; 0 at temperature 1: greedy)")
    p.add_argument("--seed", type=int, default=0, help="seed of the samples")  # fmt: skip


def add_eval_arguments(p: argparse.ArgumentParser) -> None:
    """The test-time-scaling flags of `latentcot eval`."""
    add_sampling_arguments(p)
    p.add_argument("--aggregate", choices=AGGREGATES, default="vote",
                   help="vote: majority; reward: best-of-N by --reward-model; reward-vote: votes weighted by its "
                   "softmax; signal: best-of-N by --signal; signal-vote: vote of the better-signalled half")
    p.add_argument("--reward-model", help="a trained Latent Reward Model (`latentcot reward`)")
    p.add_argument("--signal", default="aligned_change",
                   help="[-][answer.]net_change|cumulative_change|aligned_change ('-': lower is better)")
    p.add_argument("--prune-after", type=int, default=-1, help="after this many thoughts keep only --keep samples")
    p.add_argument("--keep", type=int, default=0, help="samples kept per question when pruning (by --signal)")  # fmt: skip


def _sampler(args: argparse.Namespace) -> Any:
    from latentcot.latent.sampling import ThoughtSampler

    return ThoughtSampler(args.sampler, args.noise, args.dropout, args.seed, args.temperature, args.gumbel_scale)


def wants_sampling(args: argparse.Namespace) -> bool:
    return args.samples > 1 or args.sampler != "none" or args.prune_after >= 0 or args.reward_model is not None


def evaluate_sampled(args: argparse.Namespace, method: Any, examples: list[Any], task: str) -> Any:
    """`latentcot eval` with sampling: :func:`latentcot.eval.tts.evaluate_tts`."""
    from latentcot.eval.reward import load_reward_model
    from latentcot.eval.tts import SignalChoice, TtsConfig, evaluate_tts

    cfg = TtsConfig(args.samples, _sampler(args), args.aggregate, SignalChoice.parse(args.signal),
                    args.prune_after, args.keep)  # fmt: skip
    reward = load_reward_model(args.reward_model) if args.reward_model else None
    return evaluate_tts(method, examples, task, cfg, reward, args.batch_size, args.max_new_tokens, args.n_latents)


def _reward(args: argparse.Namespace) -> int:
    from latentcot.data.generators import generate
    from latentcot.eval.reward import informative_groups, reward_model_from, train_reward_model
    from latentcot.eval.tts import collect_groups, latent_parts
    from latentcot.train.checkpoint import prepare_run_dir
    from latentcot.train.recipe import load_examples, load_trained, read_run_examples

    prepare_run_dir(args.out, overwrite=args.overwrite)  # before minutes of sampling, not after
    method, cfg = load_trained(args.checkpoint)
    task = args.task or cfg.data.task
    if args.data:
        examples = read_run_examples(args.data, cfg.data)[: args.questions or None]  # graph runs: graph form
    else:  # fresh questions of the run's task, none of them in its held-out set
        _, held_out, _ = load_examples(cfg.data, cfg.seed)
        seen = {ex.question for ex in held_out}
        seed = cfg.seed + 2 if args.data_seed is None else args.data_seed
        drawn = generate(cfg.data.task, 2 * args.questions, seed, **cfg.data.generator)
        examples = [ex for ex in drawn if ex.question not in seen][: args.questions]
    groups = collect_groups(method, examples, task, args.samples, _sampler(args), args.batch_size,
                            args.max_new_tokens, args.n_latents)  # fmt: skip
    kept = informative_groups(groups)
    right = sum(float(g.labels.sum()) for g in groups) / max(1, sum(len(g.labels) for g in groups))
    print(f"{len(groups)} questions x {args.samples} samples: {100 * right:.1f}% right; "
          f"{len(kept)} questions have right and wrong samples")  # fmt: skip
    parts = latent_parts(method)
    model = reward_model_from(parts.backbone, parts.tokenizer, parts.bot, args.pooling)
    metrics = train_reward_model(model, groups, args.out, args.steps, args.rm_batch_size, args.lr, args.seed)
    print(json.dumps(metrics, indent=2, default=str))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "reward",
        help="train a Latent Reward Model on a latent reasoner's own sampled trajectories",
        description="Samples N latent trajectories per training question from CHECKPOINT, labels each by its "
        "answer, and trains a copy of the reasoner's backbone with a scoring head (step-wise contrastive "
        "objective of LatentTTS). Use it with `latentcot eval CHECKPOINT --samples N --aggregate reward "
        "--reward-model OUT`.",
    )
    p.add_argument("checkpoint", help="the latent reasoner (checkpoint or run folder)")
    p.add_argument("--out", required=True, help="run folder of the reward model")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a reward model already in --out (without it, such a folder is refused)")
    p.add_argument("--data", help="training questions (records; a relative path not found here is read from the data directory); default: generated for the run's task")
    p.add_argument("--questions", type=int, default=1000, help="training questions (generated, or the first of --data)")
    p.add_argument("--data-seed", type=int, help="seed of the generated questions (default: run seed + 2)")
    p.add_argument("--task", help="answer rule; default: the run's task")
    p.add_argument("--steps", type=int, default=300, help="optimizer steps")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--rm-batch-size", type=int, default=8, help="questions per step (each brings its N samples)")
    p.add_argument("--pooling", choices=["mean", "last", "min"], default="mean", help="step scores -> trajectory score")
    p.add_argument("--batch-size", type=int, default=64, help="questions per sampling batch")
    p.add_argument("--max-new-tokens", type=int, default=16)
    p.add_argument("--n-latents", type=int, help="thoughts per sample (default: the method's)")
    add_sampling_arguments(p)
    p.set_defaults(handler=_reward, samples=16, sampler="noise")


def print_samples(args: argparse.Namespace, method: Any) -> None:
    """`latentcot generate --samples N`: each sampled answer, their vote and each one's thought signals."""
    from latentcot.eval.tts import majority_vote, sample_answers, sample_signals

    out = sample_answers(method, [args.question], args.samples, _sampler(args), args.n_latents, args.max_new_tokens)
    signals = sample_signals(out.samples)
    for i, answer in enumerate(out.answers):
        values = "  ".join(f"{k} {float(signals[k][i]):.3f}" for k in ("net_change", "cumulative_change", "aligned_change"))
        print(f"sample {i}: {answer!r}   {values}")
    print(f"majority vote of {args.samples}: {majority_vote(out.answers)}")
