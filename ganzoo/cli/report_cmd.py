"""`ganzoo report RUN`: one self-contained HTML page about a run."""

from __future__ import annotations

from pathlib import Path

import typer


def report(
    run: Path = typer.Argument(..., help="A run folder."),
    out: Path = typer.Option(None, "--out", help="The HTML file to write (default RUN/report.html)."),
) -> None:
    """Write an offline HTML report: config, loss curves, samples over training, metrics, memorization.

    Damaged parts of the run (a torn stats line, a truncated sample grid) are left out, one
    warning line each.
    """
    import warnings

    from ganzoo.errors import DamagedFileWarning
    from ganzoo.reporting.html import write_report

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DamagedFileWarning)
        path = write_report(run, out)
    damaged = [w for w in caught if issubclass(w.category, DamagedFileWarning)]
    for other in (w for w in caught if w not in damaged):  # recording caught them: show them as usual
        warnings.showwarning(other.message, other.category, other.filename, other.lineno)
    for message in dict.fromkeys(str(w.message) for w in damaged):  # the samples are read twice
        typer.echo(f"warning: {message}", err=True)
    typer.echo(f"wrote {path}")


def register(app: typer.Typer) -> None:
    app.command("report")(report)
