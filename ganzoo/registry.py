"""Plugin discovery: the ``ganzoo.plugins`` entry-point group plus in-process ``register()``.

Entry-point metadata is read without importing anything; a plugin is imported the first time it
is asked for. A plugin whose import fails is recorded as broken (with its package, version and the
error) and every other plugin keeps working.

Name clashes follow one rule: the first registration wins, in this order: plugins shipped in the
``ganzoo`` distribution, then other distributions sorted by name, then ``register()`` calls. A
clash emits a warning naming both providers. ``register(..., replace=True)`` is the only way to
replace a name on purpose.
"""

from __future__ import annotations

import difflib
import fnmatch
import warnings
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points

from ganzoo.errors import UserError
from ganzoo.plugin import Plugin

GROUP = "ganzoo.plugins"


class PluginNameClash(UserWarning):
    pass


@dataclass
class PluginRecord:
    name: str
    package: str  # providing distribution, or "<script>" for register()
    package_version: str
    entry_point: EntryPoint | None = None
    cls: type[Plugin] | None = None
    error: str | None = None  # set when importing the plugin failed
    shadowed: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        return "broken" if self.error else ("loaded" if self.cls else "available")

    def load(self) -> type[Plugin]:
        if self.cls is None and self.error is None:
            try:
                obj = self.entry_point.load()
                if not (isinstance(obj, type) and issubclass(obj, Plugin)):
                    raise TypeError(f"{self.entry_point.value} is not a ganzoo.plugin.Plugin subclass")
                self.cls = obj
            except Exception as exc:  # any failure of third-party code must stay contained
                self.error = f"{type(exc).__name__}: {exc}"
        if self.error:
            raise UserError(
                f"plugin '{self.name}' from {self.package} {self.package_version} is broken "
                f"({self.error}); reinstall or fix that package"
            )
        return self.cls


_records: dict[str, PluginRecord] | None = None


def _discover() -> dict[str, PluginRecord]:
    global _records
    if _records is not None:
        return _records
    found = []
    for ep in entry_points(group=GROUP):
        dist = ep.dist
        package = dist.metadata["Name"] if dist else "unknown"
        version = dist.version if dist else "?"
        found.append(PluginRecord(ep.name, package, version, entry_point=ep))
    found.sort(key=lambda r: (r.package != "ganzoo", r.package.lower(), r.name))
    _records = {}
    for record in found:
        _add(record, replace=False)
    return _records


def _add(record: PluginRecord, replace: bool) -> None:
    existing = _records.get(record.name)
    if existing is not None and not replace:
        if (
            existing.package == record.package
            and existing.entry_point == record.entry_point
            and existing.cls is record.cls
        ):
            return  # the same distribution seen twice on sys.path, or one class registered twice
        existing.shadowed.append(record.package)
        warnings.warn(
            f"two plugins are named '{record.name}': keeping the one from {existing.package}, "
            f"ignoring the one from {record.package}",
            PluginNameClash,
            stacklevel=3,
        )
        return
    _records[record.name] = record


def register(cls: type[Plugin] | None = None, *, name: str | None = None, replace: bool = False):
    """Register a plugin class defined in a script or notebook; usable as a decorator."""

    def add(plugin_cls: type[Plugin]) -> type[Plugin]:
        if not (isinstance(plugin_cls, type) and issubclass(plugin_cls, Plugin)):
            raise TypeError("register() takes a ganzoo.plugin.Plugin subclass")
        plugin_name = name or plugin_cls.name
        if not plugin_name:
            raise ValueError(f"{plugin_cls.__name__} has no name: set the class attribute `name`")
        module = plugin_cls.__module__
        _discover()
        _add(PluginRecord(plugin_name, f"<{module}>", plugin_cls.version, cls=plugin_cls), replace)
        return plugin_cls

    return add(cls) if cls is not None else add


def records() -> list[PluginRecord]:
    return sorted(_discover().values(), key=lambda r: r.name)


def list_plugins(pattern: str = "*") -> list[str]:
    """Names matching a shell-style wildcard, e.g. ``list_plugins("*gan")``."""
    return [r.name for r in records() if fnmatch.fnmatch(r.name, pattern)]


def get_record(name: str) -> PluginRecord:
    found = _discover()
    if name not in found:
        close = difflib.get_close_matches(name, list(found), n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else "run `ganzoo plugins list`"
        raise UserError(f"unknown plugin '{name}': {hint}")
    return found[name]


def get_plugin(name: str) -> type[Plugin]:
    return get_record(name).load()


def reset() -> None:
    """Forget discovered plugins (tests that install or register plugins use this)."""
    global _records
    _records = None
