"""The `ganzoo` command. Command modules import torch inside their bodies, so --help is instant.

Errors: a ``UserError`` (and any other failure) prints one line; ``--debug`` or GANZOO_DEBUG=1
shows the traceback instead. A failure inside a plugin's code names the plugin, the file and the line.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

import typer

import ganzoo
from ganzoo.cli import (
    bench_cmd,
    eval_cmd,
    export_cmd,
    import_cmd,
    plugins_cmd,
    quickstart_cmd,
    report_cmd,
    sample_cmd,
    train_cmd,
    translate_cmd,
)

app = typer.Typer(
    name="ganzoo",
    help="A plugin-based GAN suite: train, sample, export to ONNX and deploy.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ganzoo {ganzoo.__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors (or set GANZOO_DEBUG=1)."),
) -> None:
    if debug:
        os.environ["GANZOO_DEBUG"] = "1"


app.add_typer(plugins_cmd.app, name="plugins")
for module in (train_cmd, sample_cmd, export_cmd, quickstart_cmd, translate_cmd, import_cmd, report_cmd, eval_cmd, bench_cmd):
    module.register(app)


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("GANZOO_DEBUG") == "1"
    if not debug:
        show_own_warnings_as_one_line()
    try:
        app(args=args, prog_name="ganzoo")  # standalone: typer reports usage errors and exits
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        exit_code: int | str | None = 130
    except SystemExit as done:
        exit_code = done.code
    except Exception as exc:
        if debug:
            raise
        typer.echo(error_line(exc), err=True)
        exit_code = 2
    else:
        exit_code = 0
    sys.exit(exit_code)


def run() -> NoReturn:
    """The ``ganzoo`` console script and ``python -m ganzoo``: ``main``, then ``exit_now``."""
    try:
        main()
        code: object = 0
    except SystemExit as done:
        code = done.code
    except KeyboardInterrupt:  # a second Ctrl-C on the way out: the command was already stopping
        code = 130
    exit_now(code)


def exit_now(code: object) -> NoReturn:
    """End the process as Python's exit does, less its teardown of every module and object.

    With torch loaded that teardown takes a second on an idle CPU and 5-15 s on a busy one, after
    the command's work is done and its files are closed: a user waits for it at the prompt, and
    a short run pays it like a checkpoint. First, as Python does: non-daemon threads are joined,
    ``atexit`` handlers run (logging, multiprocessing and the like), the standard streams are
    flushed; a Ctrl-C meanwhile is ignored (the command is already done, or already interrupted).
    """
    import atexit
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def show_own_warnings_as_one_line() -> None:
    """ganzoo's warnings (skipped images, a name two packages provide, how a run starts) print as
    ``warning: ...``; other libraries' warnings keep Python's format."""
    import warnings

    default = warnings.formatwarning

    def one_line(message, category, filename, lineno, line=None):
        if category.__module__.startswith("ganzoo"):
            return f"warning: {message}\n"
        return default(message, category, filename, lineno, line)

    warnings.formatwarning = one_line  # formatting, not showing: tests that record warnings still see them


def error_line(exc: BaseException) -> str:
    """The one line a failure prints: the message, and where in a plugin's code it happened."""
    from ganzoo.errors import UserError

    text = str(exc).strip()
    message = text.splitlines()[0] if text else type(exc).__name__
    if isinstance(exc, UserError) or getattr(exc, "user_facing", False):
        return f"error: {message}"
    where = ""
    if "ganzoo.registry" in sys.modules:  # only plugins that were loaded can be at fault
        from ganzoo.registry import plugin_code_frame

        found = plugin_code_frame(exc)
        if found is not None:
            record, filename, line, function = found
            where = f" in plugin '{record.name}' ({record.package}) at {filename}:{line}, in {function}"
    return f"error{where}: {type(exc).__name__}: {message} (run with --debug for the traceback)"
