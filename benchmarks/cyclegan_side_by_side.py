"""CycleGAN on digit-styles: the ganzoo preset against a plain CycleGAN loop, same networks and steps.

For each seed, each setup trains once and is scored against the digit-styles answer key (PSNR and
SSIM of A->B and B->A on the 200 held-out digits, ``ganzoo_plugins.cyclegan.evaluation``):

- ``ganzoo``: ``ganzoo train cyclegan --preset digit-styles`` (600 steps of batch 4, no flips, the
  learning rate constant for half the run, then linearly to zero), with ``--set`` changes;
- ``plain``: the reference's loop written by hand (``ganzoo_plugins.plain_loops.cyclegan``: its
  own data indexing from the raw arrays, ``MSELoss``/``L1Loss``, image pools, one Adam per side)
  with the same network classes and sizes, batch and steps; random horizontal flips as the
  reference's default, the same decay schedule;
- ``plain-constant``: the same loop with a constant learning rate (the loop the issue measured).

Runs go two at a time (``--workers``), one torch thread each, in seed-major order so that every
setup of a seed trains under about the same load; the scores of a seeded single-thread run do not
depend on the load.

    python benchmarks/cyclegan_side_by_side.py [--seeds 0 1 2] [--workers 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

SETUPS = {
    "ganzoo": {},
    "ganzoo-flips": {"hflip": True},
    "plain": {"hflip": True, "decay": True},
    "plain-constant": {"hflip": True, "decay": False},
}


def run_one(setup: str, seed: int, steps: int | None, work: str) -> dict:
    from types import SimpleNamespace

    import torch

    torch.set_num_threads(1)
    from ganzoo_plugins.cyclegan.evaluation import answer_key_scores

    from ganzoo.api import load_run, train
    from ganzoo.bench.common import plain_settings
    from ganzoo.engine.spec import resolve

    start = time.perf_counter()
    if setup.startswith("ganzoo"):
        out = Path(work) / f"{setup}-{seed}"
        overrides = {"seed": seed, "progress": False, **SETUPS[setup]}
        train("cyclegan", preset="digit-styles", steps=steps, out=out, overrides=overrides)
        run = load_run(out)
        nets, done = run.nets, run.step
    else:
        from ganzoo_plugins.plain_loops import cyclegan

        spec = resolve("cyclegan", {"seed": seed, **({"steps": steps} if steps else {})}, "digit-styles")
        s = SimpleNamespace(**{**plain_settings(spec, 3), **SETUPS[setup]})
        torch.manual_seed(seed)
        nets = cyclegan.networks(s)
        step = cyclegan.make(nets, s, cyclegan.raw_data(s))
        done = spec.train.steps
        for _ in range(done):
            step()
    seconds = time.perf_counter() - start
    for net in nets.values():
        net.eval()
    scores = answer_key_scores(nets["G_AB"], nets["G_BA"], 32, seed)
    return {"setup": setup, "seed": seed, "steps": done, "seconds": round(seconds, 1),
            **{k: round(v, 3) for k, v in scores.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--setups", nargs="+", default=list(SETUPS), choices=list(SETUPS))
    parser.add_argument("--steps", type=int, default=None, help="default: the preset's 600")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    import os
    import tempfile

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="cyclegan-sbs-") as work, \
            ProcessPoolExecutor(args.workers, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(run_one, setup, seed, args.steps, work) for seed in args.seeds for setup in args.setups]
        results = []
        for future in futures:
            results.append(future.result())
            print(json.dumps(results[-1]), flush=True)
    print(f"\nload average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after; one thread per run")
    print(f"{'setup':16}{'A->B PSNR':>22}{'B->A PSNR':>22}{'mean PSNR':>12}{'A->B SSIM':>11}{'B->A SSIM':>11}")
    summary = {}
    for setup in args.setups:
        rows = [r for r in results if r["setup"] == setup]
        ab, ba = [r["psnr_AtoB"] for r in rows], [r["psnr_BtoA"] for r in rows]
        mean = statistics.mean((a + b) / 2 for a, b in zip(ab, ba))
        summary[setup] = {"psnr_AtoB": ab, "psnr_BtoA": ba, "mean_psnr": round(mean, 2),
                          "ssim_AtoB": statistics.mean(r["ssim_AtoB"] for r in rows),
                          "ssim_BtoA": statistics.mean(r["ssim_BtoA"] for r in rows)}
        print(f"{setup:16}{' '.join(f'{v:6.2f}' for v in ab):>22}{' '.join(f'{v:6.2f}' for v in ba):>22}"
              f"{mean:12.2f}{summary[setup]['ssim_AtoB']:11.3f}{summary[setup]['ssim_BtoA']:11.3f}")
    if args.json:
        args.json.write_text(json.dumps({"runs": results, "summary": summary}, indent=2))


if __name__ == "__main__":
    main()
