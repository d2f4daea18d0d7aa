"""``qrnn import-rvqe``: a model file from a checkpoint of RVQE, the reference implementation."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from ..checkpoints import atomic_save
from ..training import TrainConfig
from .common import UsageError, add_data_flag

__all__ = ["add_parser", "run", "RENAMED_COMMANDS"]

#: former command names, still accepted (with a note on stderr), and the name each has now
RENAMED_COMMANDS = {"import-reference": "import-rvqe"}


def add_parser(sub) -> None:
    imp = sub.add_parser(
        "import-rvqe",
        help="import a trained model of RVQE, the paper's reference implementation "
        "(formerly import-reference)",
    )
    imp.add_argument("checkpoint", help="an RVQE checkpoint (.tar, legacy torch.save)")
    imp.add_argument(
        "--out", required=True, help="model file to write (for `qrnn eval` / `qrnn sample`)"
    )
    add_data_flag(imp)


def run(args) -> int:
    from ..rvqe import import_rvqe_checkpoint, rvqe_task

    out = Path(args.out)
    if out.is_dir():
        raise UsageError(
            f"--out must be a model file to write; got {str(out)!r}, which is a folder"
        )
    model, info = import_rvqe_checkpoint(args.checkpoint)
    task, options = rvqe_task(info["dataset"])
    config = TrainConfig(
        task=task,
        task_options=options,
        workspace=info["workspace"],
        stages=info["stages"],
        degree=info["degree"],
        order=info["order"],
        dtype="float64",
    )
    config.resolved()  # the task must exist here (e.g. its data folder)
    atomic_save({"config": asdict(config), "model": model.state_dict(), "rvqe": info}, out)
    print(
        f"qrnn: imported {info['tag']} (dataset {info['dataset']}, epoch {info['epoch']}): "
        f"H{info['workspace']} S{info['stages']} d{info['degree']} order {info['order']}, "
        f"{sum(p.numel() for p in model.parameters())} parameters -> {args.out}"
    )
    return 0
