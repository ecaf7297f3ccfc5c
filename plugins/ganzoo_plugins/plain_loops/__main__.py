"""Train a plain loop as its own process: ``ganzoo bench`` times it against ``ganzoo train``.

    python -m ganzoo_plugins.plain_loops dcgan --settings '{"batch_size": 64, ...}' --steps 500

Writes, with ``--report FILE``, the wall-clock times (``time.time()``) at which the process began
running Python, the first iteration began and the last one ended, the images trained, and the
minor page faults taken over the iterations.
"""

import time

STARTED = time.time()  # before torch is imported: start-up includes the imports, as for ganzoo train

import argparse  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
from types import SimpleNamespace  # noqa: E402


def minor_page_faults() -> int:
    try:
        import resource
    except ImportError:  # not on Windows
        return 0
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("plugin", help="a module of ganzoo_plugins.plain_loops: dcgan, cgan or cyclegan")
    parser.add_argument("--settings", required=True, help="JSON object of settings (see ganzoo_plugins.plain_loops)")
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--report", default=None, help="write the timings here as JSON")
    args = parser.parse_args()

    import torch

    loop = importlib.import_module(f"ganzoo_plugins.plain_loops.{args.plugin}")
    s = SimpleNamespace(**json.loads(args.settings))
    torch.manual_seed(s.seed)
    nets = loop.networks(s)
    step = loop.make(nets, s, loop.raw_data(s))
    first, faults = time.time(), minor_page_faults()
    for _ in range(args.steps):
        step()
    end = time.time()
    report = {"started": STARTED, "first_step": first, "end": end, "steps": args.steps,
              "images": args.steps * s.batch_size, "threads": torch.get_num_threads(),
              "page_faults": minor_page_faults() - faults}
    if args.report:
        with open(args.report, "w") as f:
            json.dump(report, f)
    print(f"plain {args.plugin}: {args.steps} steps, {report['images'] / (end - first):.1f} images/s")


if __name__ == "__main__":
    main()
