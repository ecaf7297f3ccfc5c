"""Errors that reach the user as one line (the CLI prints them without a traceback)."""


class UserError(Exception):
    """A mistake the user can fix; the message names the problem and the fix."""


class MissingDependencyError(UserError):
    """An optional package is needed for this feature."""

    def __init__(self, package: str, extra: str | None = None, feature: str = "this feature"):
        hint = f'pip install "ganzoo[{extra}]"' if extra else f"pip install {package}"
        super().__init__(f"{feature} needs the package '{package}': {hint}")


class DamagedFileWarning(UserWarning):
    """A damaged part of a run (a torn stats line, a truncated image) was skipped; the message names it.

    Commands print these as one ``warning:`` line each and carry on with what is intact.
    """
