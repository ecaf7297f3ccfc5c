"""`ganzoo plugins list|info`."""

from __future__ import annotations

import dataclasses

import typer

app = typer.Typer(help="List and describe the installed architecture plugins.", no_args_is_help=True)


@app.command("list")
def list_cmd(pattern: str = typer.Argument("*", help="Shell-style filter on names, e.g. '*gan'.")) -> None:
    """Name, version, providing package, description and status of every plugin."""
    from rich.console import Console
    from rich.table import Table

    from ganzoo import registry

    table = Table("name", "version", "package", "description", "status")
    for record in registry.records():
        if record.name not in registry.list_plugins(pattern):
            continue
        try:
            cls = record.load()
            table.add_row(record.name, cls.version, f"{record.package} {record.package_version}", cls.description, record.status)
        except Exception:
            table.add_row(record.name, "?", f"{record.package} {record.package_version}", record.error or "", "[red]broken[/red]")
    Console(width=160).print(table)


@app.command("info")
def info_cmd(name: str = typer.Argument(..., help="Plugin name.")) -> None:
    """Config keys with defaults, presets and data requirements of one plugin."""
    from ganzoo.config import field_types
    from ganzoo.registry import get_plugin, get_record

    cls = get_plugin(name)
    record = get_record(name)
    typer.echo(f"{cls.name} {cls.version} ({record.package} {record.package_version})\n  {cls.description}")
    typer.echo(f"  data: {cls.data_kind}{', labelled' if cls.needs_labels else ''}; roles trained: generators {', '.join(cls.generators)}, discriminators {', '.join(cls.discriminators)}")
    typer.echo("  model settings (--set key=value):")
    types = field_types(cls.Config)
    for f in dataclasses.fields(cls.Config):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        typer.echo(f"    {f.name:<22} {getattr(types[f.name], '__name__', str(types[f.name])):<10} {default!r}")
    if cls.train_defaults:
        typer.echo("  engine defaults: " + ", ".join(f"{k}={v}" for k, v in cls.train_defaults.items()))
    for preset, values in cls.presets.items():
        mark = " (default)" if preset == cls.default_preset else ""
        typer.echo(f"  preset {preset}{mark}: " + ", ".join(f"{k}={v}" for k, v in values.items()))
