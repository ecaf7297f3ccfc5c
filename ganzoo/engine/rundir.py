"""The self-describing run folder: config, stats, samples, checkpoints, exports.

    RUN/config.json        plugin, versions, model/train/data config, data description
    RUN/stats.jsonl        one JSON object per logged step
    RUN/samples/           preview grids from fixed inputs
    RUN/checkpoints/       ckpt-<step>.pt, the last few kept
    RUN/exports/           ONNX models
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ganzoo.errors import UserError


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
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self.config_file.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(config, indent=2, sort_keys=False) + "\n")
        os.replace(tmp, self.config_file)

    def read_config(self) -> dict[str, Any]:
        if not self.config_file.is_file():
            raise UserError(f"{self.path} is not a ganzoo run: it has no config.json")
        return json.loads(self.config_file.read_text())

    def append_stats(self, record: dict[str, Any]) -> None:
        with self.stats_file.open("a") as f:
            f.write(json.dumps(record) + "\n")

    def read_stats(self) -> list[dict[str, Any]]:
        if not self.stats_file.is_file():
            return []
        return [json.loads(line) for line in self.stats_file.read_text().splitlines() if line.strip()]


def new_run_path(root: Path, plugin: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = root / f"{plugin}-{stamp}"
    n = 1
    while path.exists():
        n += 1
        path = root / f"{plugin}-{stamp}-{n}"
    return path
