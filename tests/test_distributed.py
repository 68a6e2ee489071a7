"""Two CPU processes (gloo) under DDP: ranks stay identical, each sees its shard of the data,
and 2 processes x batch b train to the same weights as 1 process x batch 2b."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
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


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _rank_of(pid: int) -> int | None:
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    ranks = [int(v.split(b"=", 1)[1]) for v in env if v.startswith(b"RANK=")]
    return ranks[0] if ranks else None


@pytest.mark.skipif(shutil.which("ps") is None or not Path("/proc").is_dir(), reason="needs ps and /proc (Linux)")
def test_a_rank_killed_under_torchrun_ends_the_whole_job(tmp_path):
    """kill -9 of one rank mid-training (an out-of-memory kill, a lost process): torchrun ends the
    other rank, which would otherwise wait in its next all-reduce, and exits non-zero naming the
    failed rank — no hang."""
    run = tmp_path / "run"
    torchrun = Path(sys.executable).with_name("torchrun")
    command = [str(torchrun), "--nproc_per_node", "2", "--master_port", str(_free_port()), "-m", "latentcot.cli", "train",
               "model.name_or_path=micro", "data.task=chain", "data.generator={length: 3}", "data.train_size=400",
               "data.eval_size=4", "train.batch_size=4", "train.epochs=100", "train.log_every=1",
               "method={name: cot}", f"out_dir={run}"]
    job = subprocess.Popen(command, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        began = time.monotonic()  # training has started once rank 0 logged a step
        while not ((run / "metrics.jsonl").is_file() and (run / "metrics.jsonl").stat().st_size):
            assert job.poll() is None and time.monotonic() - began < 180, "torchrun ended or never started training"
            time.sleep(0.2)
        pids = [*_children(job.pid), *(g for c in _children(job.pid) for g in _children(c))]
        workers = {_rank_of(p): p for p in pids}
        assert {0, 1} <= set(workers), workers
        os.kill(workers[1], signal.SIGKILL)
        output, _ = job.communicate(timeout=120)  # no hang: the whole job ends
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
    assert job.returncode != 0
    assert "rank: 1" in output and "SIGKILL" in output, output[-2000:]
    assert _rank_of(workers[0]) is None  # rank 0 is gone too
