"""Starting to train in a run folder: one writer at a time, and where training continues from.

- The process that writes a run folder holds its ``RunLock`` for as long as it trains (rank 0 under
  torchrun); a second writer gets one line naming the holder. Leftover temporary files of writes that
  were killed are removed once the lock is held.
- A resumed run continues from its newest readable checkpoint (a truncated newer one is set aside,
  saying so), or from the one the user names. It may change only what is safe mid-run
  (``RESUMABLE_CHANGES``); ``config.json`` records the change.
- A folder whose run stopped before its first checkpoint holds nothing to continue: it starts again
  from step 0, with the same or changed settings.
- A ``config.json`` edited since the checkpoint was written is compared with the checkpoint's own
  record: a changed learning rate is taken (and said), a changed architecture is refused naming the
  file and the key.
"""

from __future__ import annotations

import contextlib
import dataclasses
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ganzoo import config as cfgmod
from ganzoo.data.options import DataConfig
from ganzoo.engine import checkpoint as ckpt
from ganzoo.engine.distributed import DistInfo
from ganzoo.engine.options import TrainConfig
from ganzoo.engine.rundir import RunDir
from ganzoo.engine.runlock import RunLock
from ganzoo.engine.spec import RunSpec
from ganzoo.errors import UserError

# Settings a resumed run may change: its length, bookkeeping, where it runs, and learning rates
# (a lower one after a NaN stop: the optimizers take the new value, and config.json records it).
RESUMABLE_CHANGES = frozenset({
    "steps", "epochs", "log_every", "sample_every", "checkpoint_every", "keep_checkpoints", "progress",
    "device", "workers", "tensorboard", "g_lr", "d_lr",
})


class RunNote(UserWarning):
    """Something the user should know about how a run starts (printed as one line by the CLI)."""


def note(message: str) -> None:
    warnings.warn(message, RunNote, stacklevel=2)


@contextlib.contextmanager
def writing(run: RunDir, dist: DistInfo) -> Iterator[None]:
    """Hold the run folder's lock (on rank 0) while the body runs; every rank learns the outcome."""
    lock = RunLock(run.path) if dist.is_main else None
    dist.decided_by_main(lambda: lock.acquire() and None)
    try:
        if lock is not None:
            run.remove_orphans()  # safe now: no other writer can be mid-write
        yield
    finally:
        if lock is not None:
            lock.release()


def sections(spec: RunSpec) -> dict[str, type]:
    return {"model": spec.plugin_cls.Config, "train": TrainConfig, "data": DataConfig}


def with_changes(spec: RunSpec, requested: Mapping[str, Any]) -> RunSpec:
    """``spec`` with ``requested`` settings (flat or prefixed keys) applied and checked."""
    classes = sections(spec)
    routed = cfgmod.split_overrides(requested, classes)
    if not any(routed.values()):
        return spec
    current = {"model": spec.model, "train": spec.train, "data": spec.data}
    values = {}
    for name, changes in routed.items():
        base = dataclasses.asdict(current[name])
        if name == "train" and "steps" in changes and "epochs" not in changes:
            base["epochs"] = None  # an explicit length replaces a saved length in epochs
        values[name] = cfgmod.build(classes[name], {**base, **changes}, name) if changes else current[name]
    return dataclasses.replace(spec, **values)


def resumed_spec(saved: RunSpec, requested: Mapping[str, Any]) -> RunSpec:
    """The saved spec with the requested changes that a resumed run allows (others are refused)."""
    changed = sorted({key.rpartition(".")[2] for key, value in requested.items() if value is not None})
    frozen = [key for key in changed if key not in RESUMABLE_CHANGES]
    if frozen:
        raise UserError(
            f"cannot change {', '.join(frozen)} when resuming: a resumed run keeps its config "
            f"(only {', '.join(sorted(RESUMABLE_CHANGES))} may change); start a new run instead"
        )
    return with_changes(saved, requested)


def learning_rate_keys(config: Any) -> set[str]:
    return {f.name for f in dataclasses.fields(config) if f.name == "lr" or f.name.endswith("_lr")}


def check_edits(recorded: Mapping[str, Any], spec: RunSpec, source: Path) -> None:
    """Compare the config a checkpoint was written with to the run's ``config.json`` now.

    A learning rate may differ (the optimizers take the new one, and this says so); anything else in
    the model or the data, or engine settings a resume may not change, are refused naming the key.
    """
    allowed = {"model": learning_rate_keys(spec.model), "train": set(RESUMABLE_CHANGES), "data": set()}
    current = {"model": spec.model, "train": spec.train, "data": spec.data}
    for section, config in current.items():
        before = recorded.get(section) or {}
        now = dataclasses.asdict(config)
        for key in sorted(set(before) & set(now)):
            if _same(before[key], now[key]):
                continue
            if key in allowed[section]:
                if "lr" in key:
                    note(f"{source} sets {section}.{key}={now[key]} (it was {before[key]} when the checkpoint was written): "
                         "training continues with the new value")
                continue
            raise UserError(
                f"{source} changes {section}.{key} from {before[key]!r} to {now[key]!r} since the checkpoint was "
                "written: the checkpoint does not fit that; undo the edit (or start a new run with it)"
            )


def _same(a: Any, b: Any) -> bool:
    normal = lambda v: list(v) if isinstance(v, tuple) else v  # noqa: E731 - JSON turns tuples into lists
    return normal(a) == normal(b) or (isinstance(a, dict) and {str(k): v for k, v in a.items()} == b)


def choose_checkpoint(run: RunDir, requested: str | Path | None) -> ckpt.Readable | None:
    """The checkpoint a resume starts from: the requested file, or the newest readable one (setting
    aside newer unreadable ones, saying so); None when the folder has none at all."""
    if requested is not None:
        path = Path(requested)
        if not path.is_file():
            raise UserError(f"--checkpoint {path} does not exist: pick one of {run.checkpoints}/ckpt-*.pt")
        return ckpt.Readable(path, ckpt.load(path), [])
    if not ckpt.list_checkpoints(run.checkpoints):
        return None
    found = ckpt.newest_readable(run.checkpoints)
    if found.note():
        note(found.note())
        ckpt.set_aside(found.skipped)
    return found


def starting_point(run: RunDir, requested: str | Path | None, saved: RunSpec) -> Path | None:
    """The checkpoint file a resume starts from (None: the run has none), after checking that the
    run's config.json still fits it. Rank 0 decides; the other ranks load the file it names."""
    found = choose_checkpoint(run, requested)
    if found is None:
        return None
    if "config" in found.state:
        check_edits(found.state["config"], saved, run.config_file)
    return found.path
