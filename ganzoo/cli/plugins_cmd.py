"""`ganzoo plugins list|info`."""

from __future__ import annotations

import dataclasses

import typer

app = typer.Typer(help="List and describe the installed architecture plugins.", no_args_is_help=True)


@app.command("list")
def list_cmd(pattern: str = typer.Argument("*", help="Shell-style filter on names, e.g. '*gan'.")) -> None:
    """Name, version, providing package, description and status of every plugin.

    A name that two packages provide is listed once per package with its qualified name
    (PACKAGE:NAME), which `ganzoo train` and the other commands accept."""
    from rich.console import Console
    from rich.table import Table

    from ganzoo import registry

    wanted = set(registry.list_plugins(pattern))
    shown = [r for r in registry.records() if r.name in wanted]
    clashes = {r.name for r in shown if sum(o.name == r.name for o in shown) > 1}
    table = Table("name", "version", "package", "description", "status")
    for record in shown:
        name = record.qualified_name if record.name in clashes else record.name
        package = f"{record.package} {record.package_version}"
        try:
            cls = record.load()
        except Exception:  # a broken plugin is shown, with why, and the others still list
            table.add_row(name, "?", package, record.error or "", "[red]broken[/red]")
        else:
            table.add_row(name, cls.version, package, cls.description, record.status)
    Console(width=160).print(table)


@app.command("info")
def info_cmd(name: str = typer.Argument(..., help="Plugin name (or PACKAGE:NAME).")) -> None:
    """Config keys with defaults and ranges, presets and data requirements of one plugin."""
    from ganzoo.config import field_types
    from ganzoo.registry import get_record

    record = get_record(name)
    cls = record.load()
    typer.echo(f"{cls.name} {cls.version} ({record.package} {record.package_version})\n  {cls.description}")
    typer.echo(f"  data: {cls.accepts.describe()}; roles: generators {', '.join(cls.generators)}, "
               f"discriminators {', '.join(cls.discriminators)}")
    typer.echo("  model settings (--set key=value):")
    types = field_types(cls.Config)
    for f in dataclasses.fields(cls.Config):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        bounds = f.metadata.get("range")
        valid = f"  ({bounds.describe()})" if bounds is not None else ""
        typer.echo(f"    {f.name:<22} {getattr(types[f.name], '__name__', str(types[f.name])):<10} {default!r}{valid}")
    if cls.train_defaults:
        typer.echo("  engine defaults: " + ", ".join(f"{k}={v}" for k, v in cls.train_defaults.items()))
    for preset, values in cls.presets.items():
        mark = " (default)" if preset == cls.default_preset else ""
        typer.echo(f"  preset {preset}{mark}: " + ", ".join(f"{k}={v}" for k, v in values.items()))
