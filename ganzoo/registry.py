"""Plugin discovery: the ``ganzoo.plugins`` entry-point group plus in-process ``register()``.

Entry-point metadata is read without importing anything; a plugin is imported the first time it is
asked for, and checked then: it must be a ``Plugin`` subclass that implements every required method
and whose ``name`` agrees with its entry point. A plugin that fails to import or fails the check is
recorded as broken (with its package, version and the reason) and every other plugin keeps working.

Every plugin has a qualified name, ``package:name`` (the providing distribution, or the defining
module for ``register()``). When two packages provide one name, both stay usable by their qualified
names; the bare name picks the first in this order: the ``ganzoo`` distribution, then other
distributions by name, then ``register()`` calls, and says so once per process when it is used.
``register(..., replace=True)`` replaces a name on purpose.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import inspect
import warnings
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

from ganzoo.errors import UserError
from ganzoo.plugin import Accepts, Plugin, missing_methods

GROUP = "ganzoo.plugins"


class PluginNameClash(UserWarning):
    pass


@dataclass
class PluginRecord:
    name: str
    package: str  # providing distribution, or the defining module for register()
    package_version: str
    entry_point: EntryPoint | None = None
    cls: type[Plugin] | None = None
    error: str | None = None  # why the plugin cannot be used

    @property
    def qualified_name(self) -> str:
        return f"{self.package}:{self.name}"

    @property
    def status(self) -> str:
        return "broken" if self.error else ("loaded" if self.cls else "available")

    def load(self) -> type[Plugin]:
        if self.cls is None and self.error is None:
            try:
                obj = self.entry_point.load()
            except Exception as exc:  # any failure of third-party code must stay contained
                self.error = f"import failed: {type(exc).__name__}: {exc}"
            else:
                self.error = contract_problem(obj, self.name, self.entry_point.value)
                if self.error is None:
                    self.cls = obj
        if self.error:
            raise UserError(
                f"plugin '{self.name}' from {self.package} {self.package_version} is broken "
                f"({self.error}); fix or reinstall that package"
            )
        return self.cls


def contract_problem(obj: object, name: str, where: str) -> str | None:
    """Why ``obj`` cannot serve as plugin ``name`` (None when it can)."""
    if not (isinstance(obj, type) and issubclass(obj, Plugin)):
        return f"{where} is not a ganzoo.plugin.Plugin subclass"
    missing = missing_methods(obj)
    if missing:
        return f"{obj.__name__} does not implement {', '.join(missing)} (required by ganzoo.plugin.Plugin)"
    if obj.name != name:
        return (
            f"entry point '{name}' loads {obj.__name__} whose name is '{obj.name}': the entry-point name "
            f"is the one users type, so set {obj.__name__}.name = '{name}' or rename the entry point"
        )
    if not dataclasses.is_dataclass(obj.Config):
        return f"{obj.__name__}.Config must be a dataclass"
    no_default = [
        f.name for f in dataclasses.fields(obj.Config)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if no_default:
        return f"{obj.__name__}.Config field(s) {', '.join(no_default)} need a default"
    if not isinstance(obj.accepts, Accepts):
        return f"{obj.__name__}.accepts must be an Accepts(...), got {obj.accepts!r}"
    return None


_records: dict[str, list[PluginRecord]] | None = None  # name -> providers, preferred first
_warned: set[str] = set()


def _discover() -> dict[str, list[PluginRecord]]:
    global _records
    if _records is not None:
        return _records
    found = []
    seen = set()
    for ep in entry_points(group=GROUP):
        dist = ep.dist
        package = dist.metadata["Name"] if dist else "unknown"
        if (package, ep.name, ep.value) in seen:  # one distribution seen twice on sys.path
            continue
        seen.add((package, ep.name, ep.value))
        found.append(PluginRecord(ep.name, package, dist.version if dist else "?", entry_point=ep))
    found.sort(key=lambda r: (r.package != "ganzoo", r.package.lower(), r.name))
    _records = {}
    for record in found:
        _records.setdefault(record.name, []).append(record)
    return _records


def register(cls: type[Plugin] | None = None, *, replace: bool = False):
    """Register a plugin class defined in a script or notebook under its ``name``; usable as a
    decorator. The class is checked at once: a missing required method, a missing name or a Config
    without defaults raises ``TypeError`` naming the problem. Another provider of the same name stays
    usable by its qualified name unless ``replace``."""

    def add(plugin_cls: type[Plugin]) -> type[Plugin]:
        plugin_name = getattr(plugin_cls, "name", "") if isinstance(plugin_cls, type) else ""
        if isinstance(plugin_cls, type) and issubclass(plugin_cls, Plugin) and not plugin_name:
            raise TypeError(f"{plugin_cls.__name__} has no name: set the class attribute `name`")
        problem = contract_problem(plugin_cls, plugin_name, repr(plugin_cls))
        if problem:
            raise TypeError(problem)
        record = PluginRecord(plugin_name, plugin_cls.__module__, plugin_cls.version, cls=plugin_cls)
        providers = _discover().setdefault(plugin_name, [])
        if replace:
            providers.clear()
        elif any(p.cls is plugin_cls for p in providers):
            return plugin_cls  # the same class registered twice
        # A script registering a new version of its class replaces its own earlier registration.
        providers[:] = [p for p in providers if p.package != record.package]
        providers.append(record)
        return plugin_cls

    return add(cls) if cls is not None else add


def records() -> list[PluginRecord]:
    """Every provider of every name, sorted by name (a clash lists each provider)."""
    return [r for name in sorted(_discover()) for r in _discover()[name]]


def list_plugins(pattern: str = "*") -> list[str]:
    """Names matching a shell-style wildcard, e.g. ``list_plugins("*gan")``."""
    return [name for name in sorted(_discover()) if fnmatch.fnmatch(name, pattern)]


def get_record(name: str, provider: str | None = None) -> PluginRecord:
    """The record for ``name`` or ``package:name``; ``provider`` pins the package as a qualified name does."""
    package, _, bare = name.rpartition(":")
    package = package or provider
    found = _discover()
    providers = found.get(bare)
    if not providers:
        close = difflib.get_close_matches(bare, list(found), n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else "run `ganzoo plugins list`"
        raise UserError(f"unknown plugin '{name}': {hint}")
    if package:
        for record in providers:
            if record.package == package:
                return record
        installed = ", ".join(r.qualified_name for r in providers)
        raise UserError(f"plugin '{bare}' is not provided by {package} here (installed: {installed})")
    if len(providers) > 1 and bare not in _warned:
        _warned.add(bare)
        others = ", ".join(r.qualified_name for r in providers[1:])
        warnings.warn(
            f"two packages provide plugin '{bare}': using {providers[0].qualified_name} "
            f"(also installed: {others}); name one as PACKAGE:{bare} to choose",
            PluginNameClash,
            stacklevel=2,
        )
    return providers[0]


def get_plugin(name: str, provider: str | None = None) -> type[Plugin]:
    return get_record(name, provider).load()


def source_root(cls: type) -> Path | None:
    """The folder (package) or file (single module) a plugin's code lives in."""
    try:
        path = Path(inspect.getfile(cls))
    except (TypeError, OSError):
        return None
    return path.parent if path.name == "__init__.py" else path


def plugin_code_frame(exc: BaseException) -> tuple[PluginRecord, str, int, str] | None:
    """Where plugin code raised ``exc``: the innermost traceback frame inside a loaded plugin's
    package, as (record, file, line, function)."""
    import traceback

    loaded = [(r, source_root(r.cls)) for r in records() if r.cls is not None]
    roots = [(r, root) for r, root in loaded if root is not None]
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        path = Path(frame.filename)
        for record, root in roots:
            if path == root or root in path.parents:
                return record, frame.filename, frame.lineno or 0, frame.name
    return None


def reset() -> None:
    """Forget discovered plugins (tests that install or register plugins use this)."""
    global _records
    _records = None
    _warned.clear()
