"""Heavy optional pieces load only where used: importing the core, the CLI, evaluation or the
reports pulls in no plotting, TensorBoard or FID-network package."""

import ast
import subprocess
import sys

HEAVY = ("matplotlib", "tensorboard", "torch.utils.tensorboard", "pytorch_fid", "mlxtend", "pandas", "sklearn")


def loaded_after(code: str) -> list[str]:
    probe = f"{code}\nimport sys\nprint(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return ast.literal_eval(result.stdout.strip().splitlines()[-1])


def test_importing_the_package_and_its_commands_loads_none_of_them():
    modules = [
        "ganzoo.api", "ganzoo.cli.app", "ganzoo.metrics.evaluate", "ganzoo.metrics.features",
        "ganzoo.metrics.classifier", "ganzoo.reporting.run_eval", "ganzoo.reporting.memorization",
        "ganzoo.reporting.curves", "ganzoo.reporting.html", "ganzoo.data.catalog",
    ]
    assert loaded_after("\n".join(f"import {m}" for m in modules)) == []


def test_the_probe_sees_a_loaded_package():
    assert loaded_after("import matplotlib.figure") == ["matplotlib"]
