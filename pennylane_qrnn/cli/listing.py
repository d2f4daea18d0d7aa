"""``qrnn tasks`` and ``qrnn devices``: what this installation offers."""

from __future__ import annotations

from ..tasks import TASKS, get_task

__all__ = ["add_parsers", "run_tasks", "run_devices"]


def add_parsers(sub) -> None:
    sub.add_parser("tasks", help="list the tasks with their sizes and defaults")
    sub.add_parser("devices", help="list installed PennyLane devices and what each supports")


def run_tasks(_args) -> int:
    print(
        f"{'task':<20} {'i/o bits':>8} {'length':>7}  {'default model':<22} {'steps':>6} "
        f"{'batch':>6} {'lr':>6}  paper"
    )
    for name in TASKS:
        task = get_task(name)
        d = task.defaults
        model = f"H{d.workspace} S{d.stages} d{d.degree} ord{d.order}"
        print(
            f"{name:<20} {task.io_bits:>8} {getattr(task, 'length', '-')!s:>7}  {model:<22} "
            f"{d.steps:>6} {d.batch_size:>6} {d.lr:>6}  {task.paper_result}"
        )
    return 0


def run_devices(_args) -> int:
    from ..devices.catalogue import describe_devices

    print(f"{'device':<22} {'postselect':>10} {'mcm method':>15}  notes")
    for row in describe_devices():
        print(
            f"{row['name']:<22} {('yes' if row['postselect'] else 'no'):>10} "
            f"{str(row['mcm_method']):>15}  {row['notes']}"
        )
    return 0
