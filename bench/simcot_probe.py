"""Does a SIM-CoT latent hold its step's result, or only the operands the step decoder adds itself?

For a trained SIM-CoT (Coconut) run on the chain task (steps ``x + y = z.``), on held-out
questions: the answer accuracy, how often each latent decodes to its exact step, and the step
decoder teacher-forced on latent ``--latent`` (default: the last step's) with the true operands
``x + y =`` and with a wrong first operand ``x' + y =``. If the decoder then writes ``x' + y``, it
computes the step's result from the operands it has written, and step supervision does not ask
that latent for the result. Appends one JSON line per run to bench/results/simcot_probe.jsonl.

    python bench/simcot_probe.py runs/demo/simcot --seed 1      # held-out seed: the run's seed + 1
"""

import argparse
import json
from pathlib import Path

import torch

from latentcot.data.generators import generate
from latentcot.methods.sequences import encode
from latentcot.methods.simcot import SimCot
from latentcot.train.recipe import load_trained

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="SIM-CoT (Coconut) run or checkpoint folder trained on chain")
    p.add_argument("--seed", type=int, default=1, help="seed of the probe questions")
    p.add_argument("--n", type=int, default=300)
    p.add_argument("--latent", type=int, default=-1, help="0-based latent probed; -1 = the one of the last step")
    p.add_argument("--out", default=str(ROOT / "bench/results/simcot_probe.jsonl"))
    a = p.parse_args()
    method, cfg = load_trained(a.run)
    assert isinstance(method, SimCot), f"{a.run} is not a SIM-CoT run"
    held = generate("chain", a.n, a.seed, **cfg.data.generator)
    out = method.reason([e.question for e in held], max_new_tokens=8)
    latents = out.latents
    assert latents is not None  # SIM-CoT thinks in latents
    steps = len(held[0].steps)
    g = steps - 1 if a.latent < 0 else a.latent
    decoded = method.decode_steps(latents)
    targets = [method.target_texts(e.steps, latents.shape[1], e.answer) for e in held]
    per_latent = [sum(d[i] == t[i] for d, t in zip(decoded, targets)) / a.n for i in range(latents.shape[1])]

    def next_token(row: int, text: str) -> str:
        ids = torch.tensor([encode(method.tokenizer, text)])
        with method._decoder() as decoder, torch.no_grad():
            x = torch.cat([latents[row : row + 1, g : g + 1], method._token_embeddings(decoder, ids)], 1)
            h = decoder.base_model(inputs_embeds=x, position_ids=method._positions(x), use_cache=False).last_hidden_state
            token = method.tokenizer.decode([int(decoder.get_output_embeddings()(h[0, -1]).argmax())])
            assert isinstance(token, str)  # one sequence of ids decodes to one string
            return token.strip()

    true_ok = follows_text = wrong_gives_result = 0
    for row, e in enumerate(held):
        x, _, y = e.steps[g].split(" ")[:3]
        result = e.steps[g].split(" ")[4].rstrip(".")
        wrong = str((int(x) + 3) % 10)
        true_ok += next_token(row, f"{x} + {y} =") == result
        w = next_token(row, f"{wrong} + {y} =")
        follows_text += w == str((int(wrong) + int(y)) % 10)
        wrong_gives_result += w == result
    record = {"run": a.run, "seed": a.seed, "n": a.n, "latent": g,
           "answer_accuracy": sum(p == e.answer for p, e in zip(out.answers, held)) / a.n,
           "exact_step_per_latent": per_latent,
           "true_operands_give_result": true_ok / a.n,
           "wrong_operand_gives_wrong_plus_y": follows_text / a.n,
           "wrong_operand_gives_true_result": wrong_gives_result / a.n}
    print(json.dumps(record))
    with open(a.out, "a") as f:
        f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
