"""Batch streams under torchrun: two CPU processes (gloo) train one denoiser and one EndoCoT by
DDP, each rank on its own rows; the ranks stay identical, checkpoints keep every rank's stream,
and a resumed two-process run ends bit-identical to an uninterrupted one."""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from latentcot.diffusion.formulation import FlowMatching
from latentcot.diffusion.models import MLPDenoiser
from latentcot.diffusion.toy import projection, spiral
from latentcot.diffusion.train import DenoiserBatches, TrainableDenoiser, train_denoiser
from latentcot.errors import LatentCotError
from latentcot.train import checkpoint as ckpt
from latentcot.train.config import TrainConfig
from latentcot.train.distributed import DistContext
from latentcot.train.trainer import Trainer, rank_seed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_rank(rank: int, world_size: int, port: int) -> None:
    """The environment torchrun gives a process."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world_size),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)


def _sample(n: int, g: torch.Generator) -> tuple[torch.Tensor, None]:
    return spiral(n, g) @ projection(4, 0).T, None


def _denoiser_worker(rank: int, world_size: int, port: int, run: str, resume: bool) -> None:
    _as_rank(rank, world_size, port)
    torch.manual_seed(0)
    net = MLPDenoiser(4, hidden=16, depth=3)
    train_denoiser(net, FlowMatching(target="x"), _sample, steps=8, batch=16, run_dir=run, resume=resume,
                   save_every=4, log_every=2)
    save_file({k: v.clone() for k, v in net.state_dict().items()}, f"{run}/rank{rank}.safetensors")
    torch.distributed.destroy_process_group()


def _spawn(worker, *args) -> None:  # noqa: ANN001 - a module-level function mp.spawn can pickle
    mp.spawn(worker, args=(2, _free_port(), *args), nprocs=2, join=True)


def _draw(state: torch.Tensor) -> torch.Tensor:
    """What a generator in ``state`` draws next (its state tensor also holds the seed, which differs anyway)."""
    g = torch.Generator()
    g.set_state(state)
    return torch.rand(4, generator=g)


def _metrics(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "examples_per_s"} for r in rows]


def test_a_denoiser_trains_on_two_processes_and_resumes_exactly(tmp_path: Path) -> None:
    run = tmp_path / "run"
    _spawn(_denoiser_worker, str(run), False)
    ranks = [load_file(run / f"rank{r}.safetensors") for r in range(2)]
    assert all(torch.equal(ranks[0][k], ranks[1][k]) for k in ranks[0])  # DDP kept the ranks identical

    last = ckpt.latest_checkpoint(run)
    assert last.name == "step-000008" and ckpt.read_info(last)["world_size"] == 2
    streams = ckpt.load_trainer_state(last)["stream"]
    assert len(streams) == 2 and not torch.equal(_draw(streams[0]["data"]), _draw(streams[1]["data"]))

    # the job is killed after step 4's checkpoint: a two-process --resume ends where the whole run did
    cut = tmp_path / "cut"
    shutil.copytree(run, cut)
    shutil.rmtree(cut / "checkpoints" / "step-000008")
    _spawn(_denoiser_worker, str(cut), True)
    resumed = load_file(cut / "rank0.safetensors")
    assert all(torch.equal(resumed[k], ranks[0][k]) for k in resumed)
    assert _metrics(cut) == _metrics(run)


def _one_rank_rows(seed: int, rank: int) -> torch.Tensor:
    return DenoiserBatches(_sample, 8, seed, rank=rank, world_size=2).next_batch(0)["x"]


def test_each_rank_draws_its_own_rows_and_rank_zero_draws_what_one_process_draws() -> None:
    alone = DenoiserBatches(_sample, 8, seed=3).next_batch(0)["x"]
    assert torch.equal(_one_rank_rows(3, 0), alone)
    assert not torch.equal(_one_rank_rows(3, 1), alone)
    assert rank_seed(3, 0) == 3 and len({rank_seed(s, r) for s in range(4) for r in range(4)}) == 16
    assert all(0 <= rank_seed(s, 1) < 2**32 for s in range(4))


@pytest.mark.parametrize(("stream_rank", "distributed", "message"), [
    (0, "ddp", "built for rank 0 of 2, this is rank 1 of 2"),
    (1, "fsdp", "train.distributed=ddp \\(got fsdp\\)"),
])
def test_a_stream_must_be_built_for_its_rank(tmp_path: Path, stream_rank: int, distributed: str, message: str) -> None:
    stream = DenoiserBatches(_sample, 8, rank=stream_rank, world_size=2)
    cfg = TrainConfig(max_steps=2, distributed=distributed)
    with pytest.raises(LatentCotError, match=message):
        Trainer(TrainableDenoiser(MLPDenoiser(4, hidden=8, depth=2), FlowMatching()), stream, cfg, tmp_path,
                dist=DistContext(rank=1, world_size=2), run_config={"test": 1})


def _endocot_worker(rank: int, world_size: int, port: int, out: str) -> None:
    from test_visual_trainer import config

    from latentcot.visual.train import main

    _as_rank(rank, world_size, port)
    result = main(config(Path(out)), log=None)
    Path(f"{out}/rank{rank}.json").write_text(json.dumps({k: v for k, v in result.items() if k != "config"}))


def test_endocot_trains_on_two_processes(tmp_path: Path) -> None:
    out = tmp_path / "endocot"
    _spawn(_endocot_worker, str(out))
    results = [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]
    assert results[0]["steps"] == 8 and results[0]["n_eval"] == 2 and results[1] == {}  # rank 0 saves and evaluates
    assert json.loads((out / "eval.json").read_text())["solved"] == results[0]["solved"]
    final = load_file(out / "model.safetensors")
    last = load_file(out / "checkpoints" / "step-000008" / "model.safetensors")
    assert all(torch.equal(final[k], last[k]) for k in final)
    assert len(ckpt.load_trainer_state(out / "checkpoints" / "step-000008")["stream"]) == 2
