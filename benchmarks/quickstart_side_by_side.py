"""The quickstart's preset against a plain paper-recipe DCGAN loop, side by side at equal wall time.

Two processes start together on the same machine, each with ``--threads`` torch threads (default 1,
so on 2 cores each has one): ``ganzoo train dcgan --preset digits`` (what ``ganzoo quickstart``
trains, with ``--set`` changes for tuning) and a plain loop written the way pytorch/examples writes
DCGAN (``ganzoo_plugins.plain_loops.dcgan``: its own data indexing, ``BCEWithLogitsLoss``, Adam
2e-4 / betas 0.5, 0.999, batch 64, no EMA) with the same network classes at the same size (ngf/ndf
32, 32 px). The plain loop trains until ganzoo's process has exited, so both get the same wall time
under the same load: it waits, built and with its data in memory, until ganzoo's training loop
begins (ganzoo's process touches a file then), and stops when ganzoo's process exits, so ganzoo's
span includes its final grid and checkpoint. Both spans are printed.

Each side's 1,000 samples are scored with the built-in digit classifier (``ganzoo.metrics.classifier``):
the Fréchet distance of its 128-D features against those of the 5,000 real digits, and the share
classified with max softmax >= 0.9. ganzoo's samples come from the run's saved generator (its EMA
copy where the preset keeps one), as ``ganzoo sample`` draws them; the plain loop's from its G, in
whichever batch-norm mode (eval or train) scores better, so the baseline gets its best figure.

    python benchmarks/quickstart_side_by_side.py [--set g_lr=4e-4 ...] [--threads 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PLAIN = {"latent_dim": 100, "ngf": 32, "ndf": 32, "size": 32, "channels": 1, "batch_size": 64, "lr": 2e-4,
         "beta1": 0.5, "beta2": 0.999, "g_lr": None, "d_lr": None}


def ganzoo_child(go: Path, argv: list[str]) -> None:
    """``ganzoo ARGV``, touching ``go`` when its training loop begins (the plain loop starts then)."""
    from ganzoo.cli.app import main
    from ganzoo.engine.trainer import Trainer

    fit = Trainer._fit

    def signalled(self):
        go.touch()
        return fit(self)

    Trainer._fit = signalled
    main(argv)


def plain_child(out: Path, go: Path, stop: Path, seed: int) -> None:
    """The plain loop: trains from when ``go`` exists until ``stop`` does, then saves G and its
    timings in ``out``."""
    from types import SimpleNamespace

    import torch

    from ganzoo_plugins.plain_loops import dcgan

    s = SimpleNamespace(**PLAIN, seed=seed)
    torch.manual_seed(seed)
    nets = dcgan.networks(s)
    step = dcgan.make(nets, s, dcgan.raw_data(s))
    while not go.exists():
        time.sleep(0.01)
    first, steps = time.time(), 0
    while not stop.exists():
        step()
        steps += 1
    end = time.time()
    torch.save(nets["G"].state_dict(), out / "plain_G.pt")
    (out / "plain.json").write_text(json.dumps({"first_step": first, "end": end, "steps": steps,
                                                "images": steps * s.batch_size}))


def score(images, features, real_stats) -> dict:
    from ganzoo.metrics.classifier import digit_quality
    from ganzoo.metrics.features import embed
    from ganzoo.metrics.fid import feature_stats, frechet_distance

    mu, sigma = feature_stats(embed(features, images))
    quality = digit_quality(images, features=features)
    return {"fid": round(frechet_distance(mu, sigma, *real_stats), 3), "confident_share": round(quality["confident_share"], 4),
            "classes_covered": quality["classes_covered"], "class_histogram": quality["class_histogram"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", dest="sets", action="append", default=[], help="setting for ganzoo's run, KEY=VALUE")
    parser.add_argument("--preset", default="digits")
    parser.add_argument("--steps", type=int, default=None, help="ganzoo's steps (default: the preset's)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each process")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=None, help="keep both runs here (default: a temporary folder)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--plain-child", nargs=3, metavar=("OUT", "GO", "STOP"), help=argparse.SUPPRESS)
    if sys.argv[1:2] == ["--ganzoo-child"]:
        ganzoo_child(Path(sys.argv[2]), sys.argv[3:])
        return
    args = parser.parse_args()
    if args.plain_child:
        plain_child(*(Path(p) for p in args.plain_child), args.seed)
        return

    import torch

    from ganzoo.api import load_run
    from ganzoo.data.catalog import digits_imageset
    from ganzoo.metrics.classifier import DigitFeatures
    from ganzoo.metrics.features import embed
    from ganzoo.metrics.fid import feature_stats

    work = args.out or Path(tempfile.mkdtemp(prefix="quickstart-sbs-"))
    work.mkdir(parents=True, exist_ok=True)
    run_dir, go, stop = work / "ganzoo", work / "go", work / "stop"
    go.unlink(missing_ok=True)
    stop.unlink(missing_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    ganzoo_cmd = [sys.executable, __file__, "--ganzoo-child", str(go), "train", "dcgan", "--preset", args.preset, "--data", "digits",
                  "--out", str(run_dir), "--set", "progress=false", "--set", f"seed={args.seed}"]
    if args.steps:
        ganzoo_cmd += ["--steps", str(args.steps)]
    for item in args.sets:
        ganzoo_cmd += ["--set", item]
    plain_cmd = [sys.executable, __file__, "--seed", str(args.seed), "--plain-child", str(work), str(go), str(stop)]
    load_before = os.getloadavg()[0]
    ganzoo = subprocess.Popen(ganzoo_cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    plain = subprocess.Popen(plain_cmd, env=env)
    _, err = ganzoo.communicate()
    ganzoo_end = time.time()
    stop.touch()
    plain.wait()
    if ganzoo.returncode != 0:
        raise SystemExit(f"ganzoo train failed:\n{err[-2000:]}")
    if plain.returncode != 0:
        raise SystemExit("the plain loop failed")
    load_after = os.getloadavg()[0]

    torch.set_num_threads(max(2, args.threads))
    features = DigitFeatures()
    real = digits_imageset(32, 1).to_float()
    real_stats = feature_stats(embed(features, real))
    run = load_run(run_dir)
    fake = torch.cat([run.sample(250, seed=s) for s in range(args.samples // 250)])
    ganzoo_side = {"span_seconds": round(ganzoo_end - go.stat().st_mtime, 1), "steps": run.step, "images": run.images_seen,
                   **score(fake, features, real_stats)}

    from ganzoo_plugins.dcgan import Generator

    timings = json.loads((work / "plain.json").read_text())
    g = Generator(PLAIN["latent_dim"], 1, PLAIN["size"], PLAIN["ngf"])
    g.load_state_dict(torch.load(work / "plain_G.pt"))
    z = torch.randn(args.samples, PLAIN["latent_dim"], generator=torch.Generator().manual_seed(args.seed))
    modes = {}
    for mode in ("eval", "train"):
        g.train(mode == "train")
        with torch.no_grad():
            modes[mode] = score(torch.cat([g(chunk) for chunk in z.split(250)]), features, real_stats)
    best = min(modes, key=lambda m: modes[m]["fid"])
    plain_side = {"span_seconds": round(timings["end"] - timings["first_step"], 1), "steps": timings["steps"],
                  "images": timings["images"], "batch_norm_mode": best, **modes[best],
                  "other_mode_fid": modes["train" if best == "eval" else "eval"]["fid"]}
    report = {
        "ganzoo_command": "ganzoo " + " ".join(ganzoo_cmd[4:]),
        "settings": args.sets, "threads_each": args.threads, "seed": args.seed,
        "load_average": [round(load_before, 2), round(load_after, 2)],
        "ganzoo": ganzoo_side, "plain": plain_side,
        "fid_ratio": round(ganzoo_side["fid"] / plain_side["fid"], 3),
    }
    print(json.dumps(report, indent=2))
    print(f"\nganzoo {' '.join(args.sets) or '(preset)'}: FID {ganzoo_side['fid']:.2f}, confident "
          f"{ganzoo_side['confident_share']:.3f}, {ganzoo_side['steps']} steps in {ganzoo_side['span_seconds']} s | "
          f"plain: FID {plain_side['fid']:.2f}, confident {plain_side['confident_share']:.3f}, {plain_side['steps']} "
          f"steps in {plain_side['span_seconds']} s | FID ratio {report['fid_ratio']:.3f}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
