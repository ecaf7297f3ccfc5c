"""CycleGAN training speed: the ganzoo engine vs a plain PyTorch loop, side by side in one run.

Both train the same networks (deep copies of one initialisation) with the same losses, history
pools and Adam, on the same batches; the plain loop is ``CycleGAN.reference_step``, written the
way the reference implementation trains. Iterations alternate between the two (ABBA order) so
that a busy machine slows both alike. The engine's time includes drawing its batch; the plain
loop gets its batch ready-made. Mixed precision and channels-last are off on both sides.

    python benchmarks/cyclegan_speed.py                               # 128 px, ngf 64, 9 blocks
    python benchmarks/cyclegan_speed.py --size 256 --iters 20 --device cuda
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ganzoo.engine.spec import resolve
from ganzoo.engine.trainer import Trainer

TARGET = 0.97  # engine speed as a fraction of the plain loop's


def write_folders(root: Path, size: int, count: int = 8) -> Path:
    rng = np.random.default_rng(0)
    for domain in ("trainA", "trainB"):
        (root / domain).mkdir(parents=True)
        for i in range(count):
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(root / domain / f"{i}.png")
    return root


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device) -> float:
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--ngf", type=int, default=64)
    parser.add_argument("--ndf", type=int, default=64)
    parser.add_argument("--n-blocks", type=int, default=9)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--iters", type=int, default=6, help="timed iterations per side")
    parser.add_argument("--warmup", type=int, default=1, help="untimed iterations per side first")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        data = write_folders(Path(tmp) / "data", args.size)
        spec = resolve("cyclegan", {
            "dataset": str(data), "size": args.size, "ngf": args.ngf, "ndf": args.ndf,
            "n_blocks": args.n_blocks, "batch_size": args.batch_size, "device": args.device,
            "amp": "off", "channels_last": False, "progress": False,
        })
        trainer = Trainer(spec, Path(tmp) / "run")
        device = trainer.device
        plain_step = trainer.plugin.reference_step(copy.deepcopy(trainer.nets))

        def next_batch():
            saved = trainer.stream.state_dict()  # the batch the engine is about to draw
            batch = trainer.stream.next(args.batch_size)
            trainer.stream.load_state_dict(saved)
            return batch

        engine_times, plain_times = [], []
        for i in range(args.warmup + args.iters):
            batch = next_batch()
            engine = lambda: trainer.train_step()  # noqa: E731
            plain = lambda batch=batch: plain_step(batch)  # noqa: E731
            order = [("engine", engine), ("plain", plain)]
            results = {name: timed(fn, device) for name, fn in (order if i % 2 == 0 else order[::-1])}
            if i >= args.warmup:
                engine_times.append(results["engine"])
                plain_times.append(results["plain"])

    engine_s, plain_s = statistics.median(engine_times), statistics.median(plain_times)
    ratio = plain_s / engine_s
    print(f"CycleGAN training step, {args.size}x{args.size}, ngf {args.ngf}, ndf {args.ndf}, "
          f"{args.n_blocks} blocks, batch {args.batch_size}, device {device}, "
          f"{torch.get_num_threads()} CPU threads, {args.iters} timed iterations per side")
    print(f"{'':14}{'median s/it':>12}{'mean s/it':>12}{'min s/it':>12}")
    for name, times in (("ganzoo engine", engine_times), ("plain loop", plain_times)):
        print(f"{name:14}{statistics.median(times):12.3f}{statistics.mean(times):12.3f}{min(times):12.3f}")
    verdict = "meets" if ratio >= TARGET else "misses"
    print(f"engine speed / plain speed = {ratio:.3f} ({verdict} the {TARGET} target)")


if __name__ == "__main__":
    main()
