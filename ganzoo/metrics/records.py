"""The records `ganzoo eval` appends to a run's metrics.json, and the headline of each score.

Below the reporting and export layers so that both read records without importing each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

METRICS_FILE = "metrics.json"


def headline(record: Mapping[str, Any]) -> dict[str, str]:
    """The main number of each score in a record, as short text (for tables)."""
    shown: dict[str, str] = {}
    for name, value in record.get("metrics", {}).items():
        if name == "precision_recall":
            shown["precision"], shown["recall"] = score_text(value["precision"]), score_text(value["recall"])
        elif name == "memorization":
            shown["nn median ratio"] = score_text(value["median_ratio"])
            shown["nn min distance"] = score_text(value["min_distance"])
        elif name == "digit_quality":
            shown["digit classes"] = f"{value['classes_covered']}/{len(value['class_histogram'])}"
            shown["digit confident"] = score_text(value["confident_share"])
        else:
            shown[name] = score_text(value)
    for name, value in record.get("plugin_scores", {}).items():
        shown[f"{record.get('plugin', 'plugin')}:{name}"] = score_text(value)
    return shown


def score_text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, Mapping):
        if "mean" in value and "std" in value:
            return f"{value['mean']:.4g} ± {value['std']:.2g}"
        numbers = {k: v for k, v in value.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        return ", ".join(f"{k} {score_text(v)}" for k, v in numbers.items())
    return str(value)
