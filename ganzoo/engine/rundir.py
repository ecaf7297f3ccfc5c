"""The self-describing run folder: config, stats, samples, checkpoints, exports.

    RUN/config.json        plugin, versions, model/train/data config, data description
    RUN/stats.jsonl        one JSON object per logged step
    RUN/samples/           preview grids from fixed inputs
    RUN/checkpoints/       ckpt-<step>.pt, the last few kept
    RUN/exports/           ONNX models
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ganzoo import files
from ganzoo.errors import DamagedFileWarning, UserError


@dataclass(frozen=True)
class RunDir:
    path: Path

    @property
    def config_file(self) -> Path:
        return self.path / "config.json"

    @property
    def stats_file(self) -> Path:
        return self.path / "stats.jsonl"

    @property
    def samples(self) -> Path:
        return self.path / "samples"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def exports(self) -> Path:
        return self.path / "exports"

    def write_config(self, config: dict[str, Any]) -> None:
        files.write_json(self.config_file, config)

    def read_config(self) -> dict[str, Any]:
        if not self.config_file.is_file():
            raise UserError(f"{self.path} is not a ganzoo run: it has no config.json")
        try:
            config = json.loads(self.config_file.read_text(encoding="utf-8"))
        except ValueError as exc:  # also UnicodeDecodeError
            raise UserError(
                f"{self.config_file} is not valid JSON ({exc}): undo the edit that broke it"
            ) from None
        if not isinstance(config, dict):
            raise UserError(f"{self.config_file} holds a {type(config).__name__}, not a run config: undo the edit")
        return config

    def append_stats(self, record: dict[str, Any]) -> bytes:
        """Append one whole line; returns the torn tail of an interrupted earlier write, cut off first."""
        return files.append_json_line(self.stats_file, record)

    def read_stats(self) -> list[dict[str, Any]]:
        """The records; damaged lines (a torn last line after a crash) are skipped with a DamagedFileWarning."""
        if not self.stats_file.is_file():
            return []
        records, note = files.read_json_lines(self.stats_file)
        if note:
            warnings.warn(note, DamagedFileWarning, stacklevel=2)
        return records

    def drop_stats_after(self, step: int) -> int:
        """Keep only the records up to ``step``, the checkpoint a run resumes from, so the steps it
        logs again are not listed twice (damaged lines go too); returns how many records went."""
        if not self.stats_file.is_file():
            return 0
        records, damaged = files.read_json_lines(self.stats_file)
        kept = [r for r in records if r.get("step", 0) <= step]
        if len(kept) < len(records) or damaged:
            files.write_text(self.stats_file, "".join(json.dumps(r) + "\n" for r in kept))
        return len(records) - len(kept)

    def remove_orphans(self) -> list[Path]:
        """Delete the temporary files of killed writes; only while holding the folder's ``RunLock``."""
        return [p for folder in (self.path, self.samples, self.checkpoints) for p in files.remove_orphans(folder)]


def new_run_path(root: Path, plugin: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = root / f"{plugin}-{stamp}"
    n = 1
    while path.exists():
        n += 1
        path = root / f"{plugin}-{stamp}-{n}"
    return path
