"""Data-parallel training: N processes, one shard of the global batch each, gradients averaged.

A run started by ``torchrun --nproc-per-node N -m pennylane_qrnn.cli train ...`` or by
``qrnn train --nproc N`` (:func:`spawn`) is N copies of the same :class:`Trainer`, one per
process (a *rank*), joined in a ``torch.distributed`` process group (gloo on the CPU, NCCL on
CUDA; :func:`join_group`). :class:`Ranks` is what the trainer needs to know about it:

* **the data**: every rank draws the whole global batch from the run's data generator (all ranks
  hold the same generator state) and keeps its rows (:meth:`Ranks.shard`), so N processes see
  exactly the batch one process would, and the generator in a checkpoint is every rank's;
* **the gradient**: the model is wrapped in ``DistributedDataParallel`` (:meth:`Ranks.wrap`),
  which averages gradients over the ranks. The loss is a mean over scored steps, and shards may
  hold different numbers of them, so each rank backpropagates its *sum* over scored steps times
  ``N / (scored steps in the global batch)`` (:meth:`Ranks.share_of_loss`): the average over the
  ranks is then the global mean's gradient, as one process would compute it;
* **the files**: validation, checkpoints, metrics and plots happen on rank 0 only
  (:meth:`Ranks.from_main`); the other ranks receive the result (or the error) from it.

Only the standard library and torch: nothing here knows about QRNNs.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import socket
import sys
import weakref
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..errors import QRNNValueError
from ..validation import check_int

__all__ = [
    "Ranks",
    "join_group",
    "leave_group",
    "launched_rank",
    "launched_world_size",
    "check_processes",
    "spawn",
    "free_port",
    "mark_shared",
    "is_shared",
]

_SHARED = "_qrnn_raised_on_every_rank"
#: the DistributedDataParallel wrappers :meth:`Ranks.wrap` made, for :func:`leave_group`
_WRAPPED: weakref.WeakSet = weakref.WeakSet()


@dataclass(frozen=True)
class Ranks:
    """This process's place in a data-parallel run: its ``rank`` in ``[0, world_size)`` and its
    ``local_rank`` on its machine (the CUDA device it uses)."""

    rank: int
    world_size: int
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0, the one that validates and writes the run's files."""
        return self.rank == 0

    @classmethod
    def current(cls) -> Ranks | None:
        """The ranks of the initialised ``torch.distributed`` process group, or ``None`` outside
        one (or in a group of one process, which trains as a single process does)."""
        if not dist.is_available() or not dist.is_initialized() or dist.get_world_size() == 1:
            return None
        rank = dist.get_rank()
        return cls(rank, dist.get_world_size(), int(os.environ.get("LOCAL_RANK", rank)))

    def check_batch(self, batch_size: int) -> None:
        """Refuse a global batch that does not split evenly over the ranks."""
        check_processes(self.world_size, batch_size)

    def shard(self, batch):
        """This rank's rows of the global ``batch`` (a :class:`~pennylane_qrnn.tasks.Batch`)."""
        size = batch.tokens.shape[1] // self.world_size
        return batch.columns(self.rank * size, (self.rank + 1) * size)

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """``model`` in ``DistributedDataParallel``. Every parameter takes part in every step, so
        unused-parameter detection is off; DDP then hands the model's output back untouched (a
        :class:`~pennylane_qrnn.results.SequenceOutput` need not be a tensor or a tuple)."""
        device = next(model.parameters()).device
        wrapped = torch.nn.parallel.DistributedDataParallel(
            model,
            device_ids=[device] if device.type == "cuda" else None,
            find_unused_parameters=False,
        )
        _WRAPPED.add(wrapped)
        return wrapped

    def share_of_loss(self, mean_loss, shard_scored, global_scored):
        """What this rank backpropagates so that DDP's average over the ranks is the gradient of
        the mean over the global batch's scored steps.

        ``mean_loss`` is this shard's mean over its ``shard_scored`` steps (a loss that divides
        by ``max(count, 1)``); times the count it is the shard's sum, and
        ``sum_r N * sum_r / global / N = sum / global``: the global mean, also when shards hold
        different numbers of scored steps (a plain average of the shard means would not be).
        """
        shard_sum = mean_loss * shard_scored.clamp_min(1).to(mean_loss.dtype)
        return shard_sum * (self.world_size / global_scored.clamp_min(1).to(mean_loss.dtype))

    def global_metrics(self, share, correct, min_postselection):
        """``(loss, correct, min_postselection)`` of the global batch: the mean of the ranks'
        :meth:`share_of_loss` (the global mean loss), the sum of their correct predictions and the
        smallest postselection probability. Plain floats, the same on every rank."""
        sums = torch.stack([share.detach().double(), correct.detach().double()]).cpu()
        low = torch.as_tensor([float(min_postselection)], dtype=torch.float64)
        device = _collective_device()
        sums, low = sums.to(device), low.to(device)
        dist.all_reduce(sums, op=dist.ReduceOp.SUM)
        dist.all_reduce(low, op=dist.ReduceOp.MIN)
        return float(sums[0]) / self.world_size, float(sums[1]), float(low[0])

    def sampling_generator(self, seed: int, step: int) -> torch.Generator:
        """The generator a rank samples measured steps with at training step ``step``: one stream
        per (seed, step, rank), so a run is reproducible and resumable for a given N, and the data
        generator stays the same on every rank (it draws batches only)."""
        digest = hashlib.sha256(f"{seed}:{step}:{self.rank}".encode()).digest()
        return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)

    def from_main(self, work):
        """Run ``work()`` on rank 0 and return its result on every rank; an error it raises is
        raised on every rank (marked :func:`is_shared`), so no rank waits for one that stopped."""
        box = [None]
        if self.is_main:
            try:
                box = [(work(), None)]
            except Exception as error:  # noqa: BLE001 - handed to every rank, then raised
                box = [(None, _picklable(error))]
        dist.broadcast_object_list(box, src=0)
        result, error = box[0]
        if error is not None:
            raise mark_shared(error)
        return result

    def barrier(self) -> None:
        dist.barrier()


def mark_shared(error: BaseException) -> BaseException:
    """Mark ``error`` as raised alike on every rank (rank 0 alone need report it)."""
    setattr(error, _SHARED, True)
    return error


def is_shared(error: BaseException) -> bool:
    """Whether ``error`` was marked by :func:`mark_shared`."""
    return bool(getattr(error, _SHARED, False))


def _picklable(error: Exception) -> Exception:
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:  # noqa: BLE001 - any error that cannot travel travels as its message
        return RuntimeError(f"{type(error).__name__}: {error}")


def _collective_device() -> torch.device:
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def launched_world_size() -> int:
    """The number of processes ``torchrun`` (or :func:`spawn`) started this one among; 1 when it
    was started alone."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def launched_rank() -> int:
    """This process's rank as its launcher set it (``RANK``); 0 when it was started alone."""
    return int(os.environ.get("RANK", "0"))


def check_processes(processes, batch_size: int, torch_device: str = "cpu") -> int:
    """Refuse a number of processes that cannot train ``batch_size`` (the *global* batch) on
    ``torch_device``: fewer than 1, a batch that does not split evenly, more processes than
    CUDA devices, or one named CUDA device for several processes."""
    processes = check_int("nproc", processes, minimum=1)
    if batch_size % processes:
        raise QRNNValueError(
            f"batch-size must be divisible by the {processes} processes (it is the global batch, "
            f"split evenly over them); got {batch_size}"
        )
    if processes > 1 and torch_device.startswith("cuda"):
        if torch_device != "cuda":
            raise QRNNValueError(
                f"torch-device must be 'cuda' with several processes (each takes the GPU of its "
                f"local rank); got {torch_device!r}"
            )
        local = int(os.environ.get("LOCAL_WORLD_SIZE", processes))
        if local > torch.cuda.device_count():
            raise QRNNValueError(
                f"nproc must be at most the {torch.cuda.device_count()} CUDA devices of this "
                f"machine for a run on cuda; got {local}"
            )
    return processes


def join_group(torch_device: str = "cpu") -> Ranks | None:
    """Join the process group a launcher (``torchrun``, :func:`spawn`) set up through the
    environment (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``): NCCL for a run on
    CUDA (each rank on the GPU of its ``LOCAL_RANK``), gloo otherwise. ``None`` for a process
    started alone; the group already joined if there is one."""
    if launched_world_size() <= 1 and not dist.is_initialized():
        return None
    if not dist.is_available():
        raise QRNNValueError(
            "torch.distributed must be available for a data-parallel run; this torch build has "
            "no torch.distributed"
        )
    if not dist.is_initialized():
        cuda = torch_device.startswith("cuda")
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if cuda else "gloo")
    return Ranks.current()


def leave_group(finished: bool = True) -> None:
    """Leave the process group, if this process is in one.

    ``finished``: every rank got here on the same path (training ended, or an error every rank
    raised alike): wait at a barrier first, so every collective is complete on every rank. Pass
    ``False`` when this rank alone stopped (the others may be waiting in a collective it will
    never join): it then leaves at once.

    The wrappers :meth:`Ranks.wrap` made give up their DDP reducer here, even while a trainer
    still holds them. A reducer owns a reference to the process group, and if it is the last one
    (the group already destroyed), freeing the wrapper later destroys the Gloo group while holding
    the GIL; that destructor joins Gloo's worker threads, one of which may need the GIL to free
    the tensors of the collective it has just finished: the process then never exits (PyTorch
    issue 56297; seen here as a spawned rank that hung at exit about one run in three). Released
    here, the group's last reference is the one ``destroy_process_group`` drops, through
    PyTorch's binding that releases the GIL first. A released wrapper cannot train again; the
    model it wraps is untouched.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    try:
        if finished:
            dist.barrier()
    finally:
        for wrapped in list(_WRAPPED):
            _release_reducer(wrapped)
        _WRAPPED.clear()
        dist.destroy_process_group()


def _release_reducer(wrapped: torch.nn.Module) -> None:
    """Drop a DDP wrapper's references to its C++ reducer (``reducer``, and ``logger``, which
    holds the reducer too), so the reducer and its hold on the process group go now."""
    for name in ("logger", "reducer"):
        if name in wrapped.__dict__:
            delattr(wrapped, name)


def free_port() -> int:
    """A TCP port free on the loopback interface now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def spawn(processes: int, work, *args) -> int:
    """Run ``work(*args)`` in ``processes`` new local processes joined over loopback, as
    ``torchrun --nproc-per-node`` would start them; returns the first non-zero exit status (0
    when all succeed). ``work`` returns an exit status and must be importable (spawned processes
    start a fresh interpreter). On the CPU, each process gets ``cores / processes`` threads unless
    ``OMP_NUM_THREADS`` says otherwise."""
    import torch.multiprocessing as mp

    port = free_port()
    try:
        mp.start_processes(
            _spawned,
            args=(processes, port, work, args),
            nprocs=processes,
            join=True,
            start_method="spawn",
        )
    except mp.ProcessExitedException as error:
        return error.exit_code if error.exit_code and error.exit_code > 0 else 1
    return 0


def _spawned(index: int, processes: int, port: int, work, args) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(index),
        LOCAL_RANK=str(index),
        WORLD_SIZE=str(processes),
        LOCAL_WORLD_SIZE=str(processes),
    )
    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // processes))
    status = work(*args)
    # The rank's work is done (its group left, its files closed): exit without the interpreter's
    # shutdown, where a destructor that blocks (PyTorch issue 56297, see leave_group) would hold
    # the whole run. An error still takes the usual way, so the parent reports its traceback.
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()
    logging.shutdown()
    os._exit(int(status or 0))
