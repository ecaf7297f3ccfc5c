"""`ganzoo report RUN`: one self-contained HTML page about a run."""

from __future__ import annotations

from pathlib import Path

import typer


def report(
    run: Path = typer.Argument(..., help="A run folder."),
    out: Path = typer.Option(None, "--out", help="The HTML file to write (default RUN/report.html)."),
) -> None:
    """Write an offline HTML report: config, loss curves, samples over training, metrics, memorization."""
    from ganzoo.reporting.html import write_report

    path = write_report(run, out)
    typer.echo(f"wrote {path}")


def register(app: typer.Typer) -> None:
    app.command("report")(report)
