"""Two CPU processes (gloo) under DDP: ranks stay identical, each sees its shard of the data,
and 2 processes x batch b train to the same weights as 1 process x batch 2b."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file
from test_trainer import TinyMethod, counting_examples, make_cfg
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

from latentcot.train import checkpoint as ckpt
from latentcot.train.trainer import Trainer

STEPS = 6  # one epoch of the 24 distinct counting sequences


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world_size: int, port: int, out: str, distributed: str = "ddp") -> None:
    """One torchrun-like process: the environment torchrun would set, then the normal trainer."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    method = TinyMethod()
    cfg = make_cfg(batch_size=2, max_steps=STEPS, save_every=3, clip_grad=0.5, distributed=distributed)
    trainer = Trainer(method, counting_examples(24), cfg, Path(out) / "run")
    trainer.fit()
    state = method.state_dict()
    if distributed == "fsdp":  # this rank's shards, gathered into full tensors
        state = get_model_state_dict(method, options=StateDictOptions(full_state_dict=True))
    save_file({k: v.clone() for k, v in state.items()}, f"{out}/rank{rank}.safetensors")
    Path(f"{out}/rank{rank}.json").write_text(json.dumps(method.seen))
    trainer.dist.close()


def test_two_gloo_processes_match_one_process_with_double_batch(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    _check_against_one_process(tmp_path)


def _check_against_one_process(tmp_path: Path) -> None:
    ranks = [load_file(tmp_path / f"rank{r}.safetensors") for r in range(2)]
    for key, value in ranks[0].items():
        assert torch.equal(ranks[1][key], value), f"ranks diverged at {key}"

    single = TinyMethod()
    cfg = make_cfg(batch_size=4, max_steps=STEPS, clip_grad=0.5)
    Trainer(single, counting_examples(24), cfg, tmp_path / "single").fit()
    for key, value in single.state_dict().items():
        if key.endswith("attn.c_attn.bias"):  # zero-gradient key bias: see test_trainer
            value, ranks[0][key] = value[:64], ranks[0][key][:64]
        torch.testing.assert_close(ranks[0][key], value, atol=2e-5, rtol=1e-4, msg=key)

    # rank r took every other example of the single process's order (DistributedSampler split)
    seen = [[tuple(e) for e in json.loads((tmp_path / f"rank{r}.json").read_text())] for r in range(2)]
    assert seen[0] == single.seen[0::2] and seen[1] == single.seen[1::2]
    assert not set(seen[0]) & set(seen[1])

    # rank 0 wrote the checkpoints, with both ranks' RNG states for an exact resume
    path = ckpt.latest_checkpoint(tmp_path / "run")
    assert path.name == f"step-{STEPS:06d}" and ckpt.read_info(path)["world_size"] == 2
    assert len(ckpt.load_trainer_state(path)["rng"]) == 2


@pytest.mark.slow
def test_two_gloo_processes_under_fsdp_match_one_process(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path), "fsdp"), nprocs=2, join=True)
    _check_against_one_process(tmp_path)
