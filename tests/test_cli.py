"""The command line: fast help, one-line errors, the train/sample/export/generate path."""

import subprocess
import sys

import pytest


def ganzoo(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "ganzoo", *map(str, args)], capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_help_does_not_import_torch():
    code = "import sys; from ganzoo.cli.app import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\nprint('torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.strip().endswith("False"), proc.stdout + proc.stderr
    assert "Commands" in proc.stdout


def test_version():
    import ganzoo as pkg

    assert ganzoo("--version").stdout.strip() == f"ganzoo {pkg.__version__}"


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "dcgna"], "error: unknown plugin 'dcgna': did you mean dcgan"),
        (["train", "dcgan", "--set", "lss=1"], "error: unknown setting 'lss': did you mean loss"),
        (["train", "dcgan", "--data", "/no/such/folder", "--steps", "1"], "/no/such/folder"),
        (["sample", "/no/such/run"], "error: /no/such/run is not a ganzoo run"),
        (["generate", "/no/model.onnx"], "error: no model file at /no/model.onnx"),
    ],
)
def test_user_mistakes_are_one_line(args, message):
    proc = ganzoo(*args, check=False)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr


def test_debug_flag_shows_the_traceback():
    proc = ganzoo("--debug", "train", "dcgna", check=False)
    assert "Traceback" in proc.stderr and "UserError" in proc.stderr


def test_plugins_list_and_info():
    out = ganzoo("plugins", "list").stdout
    for name in ("dcgan", "cgan", "cyclegan", "progan"):
        assert name in out
    info = ganzoo("plugins", "info", "dcgan").stdout
    assert "latent_dim" in info and "preset digits" in info


def test_train_sample_export_generate(tmp_path):
    run = tmp_path / "run"
    out = ganzoo("train", "dcgan", "--preset", "tiny", "--steps", "3", "--out", run, "--set", "progress=false").stdout
    assert f"finished at step 3 (24 images): {run}" in out
    ganzoo("sample", run, "-n", "4", "--out", tmp_path / "grid.png")
    ganzoo("sample", run, "-n", "3", "--out", tmp_path / "singles")
    assert (tmp_path / "grid.png").stat().st_size > 0 and len(list((tmp_path / "singles").glob("*.png"))) == 3
    export_out = ganzoo("export", run).stdout
    model = run / "exports" / "dcgan-generator.onnx"
    assert str(model) in export_out and model.is_file()
    assert sorted(p.name for p in (run / "exports").iterdir()) == ["dcgan-generator.onnx"]  # self-contained
    ganzoo("generate", model, "-n", "9", "--seed", "0", "--out", tmp_path / "onnx.png")
    from PIL import Image

    assert Image.open(tmp_path / "onnx.png").size == (3 * 16 + 4 * 2, 3 * 16 + 4 * 2)


def test_a_failure_inside_plugin_code_names_the_plugin_file_and_line(tmp_path, capsys):
    """Without --debug: one line with the plugin, its file and the line that raised."""
    import inspect

    from ganzoo import registry
    from ganzoo.cli.app import main
    from ganzoo_plugins.dcgan import DCGAN

    class BrokenLoss(DCGAN):
        name = "broken-loss"

        def generator_loss(self, nets, batch, ctx):
            raise RuntimeError("shapes do not line up")

    registry.register(BrokenLoss)
    line = inspect.getsourcelines(BrokenLoss.generator_loss)[1] + 1
    with pytest.raises(SystemExit) as exit_:
        main(["train", "broken-loss", "--preset", "tiny", "--steps", "1", "--out", str(tmp_path / "r"),
              "--set", "progress=false"])
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and "\n" not in err
    assert err.startswith(f"error in plugin 'broken-loss' ({__name__}) at {__file__}:{line}, in generator_loss:")
    assert err.endswith("RuntimeError: shapes do not line up (run with --debug for the traceback)")


def test_ganzoos_own_warnings_print_as_one_line(tmp_path):
    """A run that restarts (it stopped before its first checkpoint) says so in one plain line."""
    run = tmp_path / "r"
    ganzoo("train", "dcgan", "--preset", "tiny", "--steps", "1", "--out", run, "--set", "progress=false",
           "--set", "checkpoint_every=100")
    for path in (run / "checkpoints").iterdir():
        path.unlink()
    proc = ganzoo("train", "--resume", run, "--steps", "1", "--set", "progress=false")
    assert proc.stderr.strip().splitlines() == [f"warning: {run} holds no checkpoint yet: training it again from step 0"]
