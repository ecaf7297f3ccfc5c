"""Nonsense and contradictory inputs the CLI and the data side refuse in one line."""

import pytest

from ganzoo.api import train
from ganzoo.cli.app import main
from ganzoo.errors import UserError

TINY = {"progress": False, "log_every": 1, "sample_every": 100, "checkpoint_every": 100}


def one_line_error(argv, capsys) -> str:
    with pytest.raises(SystemExit) as done:
        main([str(a) for a in argv])
    err = capsys.readouterr().err.strip()
    assert done.value.code == 2 and len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize("n", [0, -3])
def test_sample_needs_at_least_one_image(tiny_dcgan_run, capsys, n):
    err = one_line_error(["sample", tiny_dcgan_run, "-n", n], capsys)
    assert err == f"error: -n {n} is out of range: ask for 1 or more images"


def test_sample_class_on_an_unconditional_run_is_refused(tiny_dcgan_run, capsys, tmp_path):
    err = one_line_error(["sample", tiny_dcgan_run, "--class", "7", "--out", tmp_path / "g.png"], capsys)
    assert err == f"error: {tiny_dcgan_run} is an unconditional 'dcgan' run: it draws no classes, so leave out --class"
    assert not (tmp_path / "g.png").exists()


def test_channels_other_than_1_or_3_are_refused_with_the_valid_values(tmp_path, capsys):
    err = one_line_error(
        ["train", "dcgan", "--preset", "tiny", "--steps", "1", "--out", tmp_path / "r", "--set", "channels=2",
         "--set", "progress=false"],
        capsys,
    )
    assert "channels=2 (data) is out of range: it must be one of 1, 3" in err


def test_negative_workers_are_refused_even_when_data_is_not_streamed(tmp_path):
    with pytest.raises(UserError, match=r"workers=-2 \(train\) is out of range: it must be >= 0"):
        train("dcgan", preset="tiny", steps=1, out=tmp_path / "r", overrides={**TINY, "workers": -2})
