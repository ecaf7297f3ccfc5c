"""One self-contained HTML page per run: every image is embedded, so the page opens offline.

Sections: configuration, training curves, stages (growing models), samples over training (a few
grids and the GIF), metrics records (``ganzoo eval``), the memorization check, and any other
pictures a plugin wrote into the run folder. The curves and the GIF are written next to the page.
"""

from __future__ import annotations

import base64
import html
import json
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ganzoo import files
from ganzoo.engine.rundir import RunDir
from ganzoo.errors import DamagedFileWarning
from ganzoo.metrics.records import METRICS_FILE, headline
from ganzoo.reporting import memorization
from ganzoo.reporting.curves import plot_loss_curves
from ganzoo.reporting.gif import evenly_spaced, make_samples_gif, sample_grids

CURVES_FILE = "loss_curves.png"
GIF_FILE = "samples.gif"
MEMORIZATION_FILES = (memorization.GRID_FILE, memorization.DISTANCES_FILE)
GRIDS_SHOWN = 6
OTHER_IMAGES_SHOWN = 12
MIME = {".png": "image/png", ".gif": "image/gif", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}

STYLE = """
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1100px; padding: 1em 2em; color: #222; }
h1 { margin-bottom: 0.1em; } h2 { border-bottom: 2px solid #ddd; padding-bottom: 0.2em; margin-top: 1.6em; }
.sub { color: #666; margin-top: 0; } nav a { margin-right: 1em; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
td, th { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.num { text-align: right; font-family: monospace; }
figure { display: inline-block; margin: 0.4em; vertical-align: top; text-align: center; }
figure img { max-width: 100%; image-rendering: pixelated; border: 1px solid #ccc; }
figcaption { font-size: 0.85em; color: #555; } .grids img { width: 240px; } .gif img { min-width: 320px; }
details { margin: 0.3em 0; }
.empty { color: #888; font-style: italic; }
"""


@dataclass(frozen=True)
class Section:
    anchor: str
    title: str
    body: str


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write RUN/report.html (or ``out``) with its curves PNG and samples GIF; return the page."""
    run = RunDir(Path(run_dir))
    config = run.read_config()
    records = run.read_stats()
    target = Path(out) if out is not None else run.path / "report.html"
    curves = plot_loss_curves(records, run.path / CURVES_FILE, title=f"{config['plugin']} - {run.path.name}")
    gif = make_samples_gif(run.samples, run.path / GIF_FILE)
    sections = [
        Section("config", "Configuration", config_section(config)),
        Section("training", "Training", training_section(records, curves)),
    ]
    stages = stage_segments(records)
    if stages:
        sections.append(Section("stages", "Stages", table(stages)))
    sections += [
        Section("samples", "Samples over training", samples_section(run.samples, gif)),
        Section("metrics", "Metrics", metrics_section(read_metrics(run.path))),
        Section("memorization", "Memorization check", memorization_section(run.path)),
    ]
    others = other_images(run.path)
    if others:
        sections.append(Section("other", "Other pictures from the run", figures(others, "")))
    files.write_text(target, page(run.path.name, config, records, sections))
    return target


# -- the page ------------------------------------------------------------------------------------
def page(name: str, config: Mapping[str, Any], records: Sequence[Mapping[str, Any]], sections: list[Section]) -> str:
    last = records[-1] if records else {}
    subtitle = (
        f"plugin {config['plugin']} {config.get('plugin_version', '')} ({config.get('plugin_package', '')}), "
        f"step {last.get('step', 0)}, {last.get('images_seen', 0):,} images seen; "
        f"report written {time.strftime('%Y-%m-%d %H:%M')}"
    )
    nav = " ".join(f'<a href="#{s.anchor}">{esc(s.title)}</a>' for s in sections)
    body = "\n".join(f'<section id="{s.anchor}"><h2>{esc(s.title)}</h2>\n{s.body}\n</section>' for s in sections)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>ganzoo report: {esc(name)}</title><style>{STYLE}</style></head>\n<body>\n"
        f"<h1>{esc(name)}</h1><p class=\"sub\">{esc(subtitle)}</p><nav>{nav}</nav>\n{body}\n</body></html>\n"
    )


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def data_uri(path: Path) -> str:
    mime = MIME.get(path.suffix.lower(), "application/octet-stream")
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def figure(path: Path, caption: str, alt: str | None = None) -> str:
    return (
        f'<figure><img src="{data_uri(path)}" alt="{esc(alt or caption)}">'
        f"<figcaption>{esc(caption)}</figcaption></figure>"
    )


def figures(paths: Iterable[Path], css_class: str) -> str:
    return f'<div class="{css_class}">' + "".join(figure(p, p.name) for p in paths) + "</div>"


def empty(text: str) -> str:
    return f'<p class="empty">{esc(text)}</p>'


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt(v) for v in value)
    return str(value)


def key_value_table(items: Mapping[str, Any]) -> str:
    rows = "".join(
        f'<tr><th>{esc(k)}</th><td{" class=num" if isinstance(v, (int, float)) and not isinstance(v, bool) else ""}>'
        f"{esc(fmt(v))}</td></tr>"
        for k, v in items.items()
    )
    return f"<table>{rows}</table>"


def flatten(value: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, Mapping):
            flat.update(flatten(item, f"{name}."))
        else:
            flat[name] = item
    return flat


# -- sections ------------------------------------------------------------------------------------
def config_section(config: Mapping[str, Any]) -> str:
    data = config.get("data") or {}
    summary = {
        "plugin": config.get("plugin"),
        "plugin version": config.get("plugin_version"),
        "plugin package": config.get("plugin_package"),
        "preset": config.get("preset"),
        "ganzoo version": config.get("ganzoo_version"),
        "dataset": data.get("dataset"),
    }
    parts = [key_value_table({k: v for k, v in summary.items() if v is not None})]
    for name in ("model", "train", "data", "data_info"):
        if config.get(name):
            parts.append(f"<details><summary>{esc(name)} settings</summary>{key_value_table(config[name])}</details>")
    return "\n".join(parts)


def training_section(records: Sequence[Mapping[str, Any]], curves: Path | None) -> str:
    if not records:
        return empty("no stats.jsonl records yet")
    last = records[-1]
    summary = {
        "steps": last.get("step"),
        "images seen": last.get("images_seen"),
        "images/sec (last interval)": last.get("images_per_sec"),
        "logged records": len(records),
    }
    if "time" in records[0] and "time" in last:
        summary["logged time span (min)"] = round((last["time"] - records[0]["time"]) / 60, 2)
    final = {f"final {k}": v for k, v in last.items() if "/" in k and not k.startswith("stage/")}
    parts = [key_value_table({**summary, **final})]
    if curves is not None:
        parts.append(figure(curves, "loss curves (from stats.jsonl)"))
    return "\n".join(parts)


def stage_segments(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Runs of records whose whole-numbered stage values (e.g. a resolution) stay the same."""
    keys = sorted({k for r in records for k in r if k.startswith("stage/")})
    if not keys:
        return []
    discrete = [k for k in keys if all(float(r.get(k, 0)).is_integer() for r in records)]
    continuous = [k for k in keys if k not in discrete]
    segments: list[dict[str, Any]] = []
    for record in records:
        ident = tuple(record.get(k) for k in discrete)
        if not segments or segments[-1]["ident"] != ident:
            segments.append({"ident": ident, "first": record, "last": record, "ranges": {}})
        segment = segments[-1]
        segment["last"] = record
        for key in continuous:
            if key in record:
                low, high = segment["ranges"].get(key, (record[key], record[key]))
                segment["ranges"][key] = (min(low, record[key]), max(high, record[key]))
    return [
        {
            "steps": f"{s['first'].get('step')}-{s['last'].get('step')}",
            "images seen at first log": s["first"].get("images_seen"),
            **{k.removeprefix("stage/"): v for k, v in zip(discrete, s["ident"])},
            **{k.removeprefix("stage/"): f"{fmt(lo)} to {fmt(hi)}" for k, (lo, hi) in s["ranges"].items()},
        }
        for s in segments
    ]


def table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Rows as a table whose columns are every key seen, in first-seen order."""
    columns = list(dict.fromkeys(k for row in rows for k in row))
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{esc(fmt(row.get(c, '')))}</td>" for c in columns) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def samples_section(samples_dir: Path, gif: Path | None) -> str:
    grids = evenly_spaced(sample_grids(samples_dir), GRIDS_SHOWN)
    if not grids:
        return empty("no preview grids in samples/ yet")
    parts = []
    if gif is not None:
        parts.append(f'<div class="gif">{figure(gif, "fixed inputs over training (animated)")}</div>')
    parts.append('<div class="grids">' + "".join(figure(p, f"step {step}") for step, p in grids) + "</div>")
    return "\n".join(parts)


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / METRICS_FILE
    if not path.is_file():
        return []
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:  # a metrics.json written before writes were atomic, or edited
        warnings.warn(f"skipped {path}: not valid JSON ({exc})", DamagedFileWarning, stacklevel=2)
        return []
    return loaded if isinstance(loaded, list) else [loaded]


def metrics_section(records: Sequence[Mapping[str, Any]]) -> str:
    """One row per evaluation (newest first) with the main numbers, then each one's full record."""
    if not records:
        return empty("no metrics yet: run `ganzoo eval RUN` to add them")
    newest_first = list(reversed(records))
    rows = [{"#": i, **evaluation_facts(r), **headline(r)} for i, r in enumerate(newest_first, start=1)]
    parts = [table(rows)]
    for index, record in enumerate(newest_first, start=1):
        parts.append(
            f"<details><summary>evaluation {index}: every value and its provenance</summary>"
            f"{key_value_table(flatten(record))}</details>"
        )
    return "\n".join(parts)


def evaluation_facts(record: Mapping[str, Any]) -> dict[str, Any]:
    prov = record.get("provenance", {})
    return {
        "time": record.get("time", ""),
        "model": f"step {record['step']}" if "step" in record else record.get("model_file", record.get("source", "")),
        "features": prov.get("feature_net", ""),
        "samples": f"{prov.get('num_generated', '?')} vs {prov.get('num_real', '?')} real",
        "reference": prov.get("reference", record.get("reference_set", "")),
    }


def memorization_section(run_dir: Path) -> str:
    found = [run_dir / name for name in MEMORIZATION_FILES if (run_dir / name).is_file()]
    if not found:
        return empty("no memorization check yet: run `ganzoo eval RUN --metric nn`")
    note = (
        "<p>Each generated sample next to its nearest training images; distances near zero "
        "mean the model reproduces training images.</p>"
    )
    return note + "".join(figure(p, p.name) for p in found)


def other_images(run_dir: Path) -> list[Path]:
    """Pictures a plugin or ``ganzoo sample`` left in the run folder (e.g. growth strips)."""
    own = {CURVES_FILE, GIF_FILE, *MEMORIZATION_FILES}
    found = [
        p
        for folder in (run_dir, run_dir / "samples")
        if folder.is_dir()
        for p in sorted(folder.iterdir())
        if p.suffix.lower() in MIME and p.name not in own and not p.name.startswith("step-")
    ]
    return found[:OTHER_IMAGES_SHOWN]
