"""`ganzoo eval RUN_OR_MODEL.onnx --metric fid,kid,is,pr,nn`: sample quality scores with their provenance."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import typer


def eval_(
    target: Path = typer.Argument(..., help="A run folder, or an ONNX generator exported by ganzoo."),
    metric: str = typer.Option(
        "fid,kid,pr,nn", "--metric", "-m",
        help="Comma-separated: fid, kid, is (Inception Score), pr (precision/recall), nn (memorization), digit_quality.",
    ),
    features: str = typer.Option(
        None, "--features",
        help="Feature network: inception, digits or torchvision:<model> (default: digits for digit data, else inception).",
    ),
    weights: Path = typer.Option(
        None, "--inception-weights", "--weights",
        help="Weights file of the feature network (pt_inception-2015-12-05-6726825d.pth, or a torchvision state dict).",
    ),
    download: bool = typer.Option(False, "--download", help="Download the FID Inception weights when they are missing."),
    num: int = typer.Option(1000, "-n", "--num", help="How many generated samples to score."),
    seed: int = typer.Option(0, "--seed", help="Random seed for the samples."),
    real_n: int = typer.Option(10_000, "--real-n", help="Most real reference images (a seeded subset of larger sets)."),
    data: str = typer.Option(None, "--data", help="Reference set (built-in name or folder); required for .onnx models."),
    json_out: Path = typer.Option(None, "--json", help="Also write this evaluation's record to a JSON file."),
    nn_space: str = typer.Option("features", "--nn-space", help="Memorization pictures in 'features' or 'pixels' space."),
    checkpoint: Path = typer.Option(None, "--checkpoint", help="A specific checkpoint file instead of the latest."),
    device: str = typer.Option("auto", "--device", help="Where the generator and the feature network run: auto (CUDA when present), cpu, cuda:1."),
    batch_size: int = typer.Option(
        250, "--batch-size", min=1,
        help="Images the generator makes at a time (lower it for large generators); decides which samples a seed draws.",
    ),
) -> None:
    """Score generated samples (FID, KID, IS, precision/recall, nearest training neighbours)."""
    from ganzoo.reporting.run_eval import evaluate_subject, open_subject, parse_metrics

    metrics = parse_metrics(metric)  # a typo fails before any loading
    subject = open_subject(target, data, checkpoint, device, real_n)
    record = evaluate_subject(subject, metrics, features, weights, download, num, seed, nn_space, device, batch_size)
    typer.echo(format_table(record))
    if json_out is not None:
        from ganzoo.files import write_json

        write_json(json_out, record)
    pictures = record.get("memorization_pictures", {})
    written = [subject.out_dir / f"{subject.prefix}metrics.json", *(pictures[k] for k in ("grid", "distances") if k in pictures)]
    typer.echo("wrote " + ", ".join(str(p) for p in written) + (f", {json_out}" if json_out else ""))


def format_table(record: Mapping[str, Any]) -> str:
    """Scores one per line, then the facts they depend on."""
    from ganzoo.metrics.records import headline

    rows = list(headline(record).items())
    prov = record["provenance"]
    facts = [
        ("samples", f"{prov['num_generated']} generated (seed {prov['seed']}) vs {prov['num_real']} real from {prov['reference']}"),
        ("features", f"{prov['feature_net']} (weights sha256 {str(prov['weights_hash'])[:16]}..., resize {prov['resize']})"),
    ]
    if "step" in record:
        facts.insert(0, ("model", f"{record['source']} at step {record['step']}"))
    width = max(len(name) for name, _ in rows + facts)
    lines = lambda pairs: [f"{name:<{width}}  {text}" for name, text in pairs]  # noqa: E731
    return "\n".join(lines(rows) + [""] + lines(facts))


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_)
