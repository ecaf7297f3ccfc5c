"""`ganzoo bench`: training, inference and data-pipeline speed on this machine, in one report.

Training, per row (a plugin with its CPU-sized preset, ``dcgan@64`` for another batch size), against
a hand-written PyTorch loop of the same networks that shares no code with the engine
(``ganzoo_plugins.plain_loops``, registered in the ``ganzoo.plain_loops`` entry-point group):

- "train as run" (``as_run``): ``ganzoo train`` as a user runs it, as a process in a terminal,
  against the plain loop as a process; start-up reported apart;
- "engine step" (``step``): the engine's loop alone (EMA, progress, logs, samples, checkpoints off)
  against the plain loop, in one process;
- "where the time goes" (``parts``): one process of each side with a timer on every part.

Inference (``inference``): onnxruntime against eager PyTorch, and its GFLOP/s against this
machine's matrix-multiply peak. Data pipeline (``pipeline``): a streamed folder's images/s.
"""

from ganzoo.bench.as_run import bench_as_run, bench_parts
from ganzoo.bench.common import (
    BenchOptions,
    Row,
    machine_info,
    plain_loop,
    plain_settings,
    trainer_epoch_steps,
    trainer_settings,
)
from ganzoo.bench.inference import bench_inference
from ganzoo.bench.pipeline import bench_pipeline, write_photo_folder
from ganzoo.bench.report import format_report, run_bench, to_json
from ganzoo.bench.step import bench_engine_step

__all__ = [
    "BenchOptions", "Row", "bench_as_run", "bench_engine_step", "bench_inference", "bench_parts", "bench_pipeline",
    "format_report", "machine_info", "plain_loop", "plain_settings", "run_bench", "to_json", "trainer_epoch_steps",
    "trainer_settings",
    "write_photo_folder",
]
