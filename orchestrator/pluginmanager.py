"""Loads plugins and exposes them through a typed facade; the core never calls ``pm.hook``.

Built-in plugins (``orchestrator_plugins.BUILTIN_PLUGINS``) and third-party plugins (entry
points in the ``orchestrator`` group) are registered through the same ``pm.register`` path.
``ORCHESTRATOR_BLOCK_PLUGINS`` (comma-separated plugin names) keeps named plugins from loading.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import os
import re
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable

import pluggy

from orchestrator import hookspecs
from orchestrator.errors import PluginError, did_you_mean
from orchestrator.strategies import FAMILIES, Strategy

BLOCK_ENV = "ORCHESTRATOR_BLOCK_PLUGINS"
_REGISTER_HOOKS = {
    "scorer": "orchestrator_register_scorers",
    "pruner": "orchestrator_register_pruners",
    "distiller": "orchestrator_register_distillers",
    "quantizer": "orchestrator_register_quantizers",
}


@dataclass
class PluginInfo:
    name: str
    distribution: str | None
    version: str | None
    hooks: list[str] = field(default_factory=list)
    strategies: dict[str, list[str]] = field(default_factory=dict)
    tasks: list[str] = field(default_factory=list)


@dataclass
class Catalogue:
    """Every strategy and task the loaded plugins provide, by family and name."""

    strategies: dict[str, dict[str, Strategy]] = field(default_factory=lambda: {f: {} for f in FAMILIES})
    tasks: dict[str, Callable[..., Any]] = field(default_factory=dict)
    owners: dict[tuple[str, str], str] = field(default_factory=dict)

    def family(self, family: str) -> dict[str, Strategy]:
        return self.strategies[family]


def blocked_plugins() -> set[str]:
    return {n.strip() for n in os.environ.get(BLOCK_ENV, "").split(",") if n.strip()}


class PluginHost:
    """The typed facade over the pluggy manager."""

    def __init__(self, extra_plugins: list[tuple[str, object]] = ()) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self._dists: dict[str, tuple[str | None, str | None]] = {}
        blocked = blocked_plugins()
        from orchestrator_plugins import BUILTIN_PLUGINS

        for modname in BUILTIN_PLUGINS:
            if builtin_name(modname) not in blocked:
                self._register(builtin_name(modname), importlib.import_module(modname),
                               ("compression-orchestrator", _own_version()))
        for ep in md.entry_points(group=hookspecs.PROJECT):
            if ep.name in blocked:
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken plugin names itself, never a bare traceback
                dist = ep.dist.name if ep.dist else "unknown distribution"
                raise PluginError(f"plugin '{ep.name}' ({dist}) failed to import: {type(exc).__name__}: {exc}; "
                                  f"set {BLOCK_ENV}={ep.name} to run without it") from exc
            dist = (ep.dist.name, ep.dist.version) if ep.dist else (None, None)
            check_orchestrator_requirement(ep.name, plugin, dist, ep.dist.requires if ep.dist else None)
            self._register(ep.name, plugin, dist)
        for name, plugin in extra_plugins:
            if name not in blocked:
                check_orchestrator_requirement(name, plugin, (None, None), None)
                self._register(name, plugin, (None, None))
        self._check_pending()
        self.catalogue = self._collect()

    def _check_pending(self) -> None:
        """An implementation of a hook that does not exist is an error naming the plugin and the hook."""
        known = [n for n in dir(hookspecs) if n.startswith("orchestrator_")]
        for hook_name in dir(self.pm.hook):
            caller = getattr(self.pm.hook, hook_name)
            if hook_name.startswith("_") or caller.spec is not None:
                continue
            for impl in caller.get_hookimpls():
                if not impl.optionalhook:
                    raise PluginError(f"plugin '{impl.plugin_name}' implements '{hook_name}', which is not an "
                                      f"orchestrator hook{did_you_mean(hook_name, known)}")
        self.pm.check_pending()

    def _register(self, name: str, plugin: object, dist: tuple[str | None, str | None]) -> None:
        try:
            self.pm.register(plugin, name=name)
        except pluggy.PluginValidationError as exc:
            hook = re.search(r"for hook '(\w+)'", str(exc))
            reason = str(exc).strip().splitlines()[-1].rstrip(".")
            raise PluginError(f"plugin '{name}': hook '{hook.group(1) if hook else '?'}': {reason}") from exc
        except ValueError as exc:
            raise PluginError(f"plugin '{name}' is registered twice: {exc}") from exc
        self._dists[name] = dist

    def _call_each(self, hook_name: str, make_register: Callable[[str], Callable[..., None]]) -> None:
        # Each implementation gets a register callback bound to its plugin, so clashes name both.
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            register = make_register(impl.plugin_name)
            try:
                impl.function(*[{"register": register}[a] for a in impl.argnames])
            except PluginError:
                raise
            except Exception as exc:
                raise PluginError(f"plugin '{impl.plugin_name}' failed in {hook_name}: "
                                  f"{type(exc).__name__}: {exc}") from exc

    def _collect(self) -> Catalogue:
        cat = Catalogue()
        for family, hook_name in _REGISTER_HOOKS.items():
            base = FAMILIES[family]

            def make_register(plugin: str, family: str = family, base: type = base) -> Callable[[Any], None]:
                def register(strategy: Any) -> None:
                    if isinstance(strategy, type):
                        strategy = strategy()
                    if not isinstance(strategy, base):
                        raise PluginError(f"plugin '{plugin}' registered {strategy!r} as a {family}, "
                                          f"but it is not a {base.__name__}")
                    _add(cat, family, strategy.name, strategy, plugin)
                return register

            self._call_each(hook_name, make_register)

        def make_task_register(plugin: str) -> Callable[[str, Callable[..., Any]], None]:
            def register(name: str, factory: Callable[..., Any]) -> None:
                _add(cat, "task", name, factory, plugin)
            return register

        self._call_each("orchestrator_register_tasks", make_task_register)
        return cat

    # --- lifecycle: observers; one that raises is reported and the run goes on -------------
    def run_start(self, config: Any, run_dir: Any) -> None:
        self._observe("orchestrator_run_start", config=config, run_dir=run_dir)

    def trial_start(self, number: int, recipe: dict) -> None:
        self._observe("orchestrator_trial_start", number=number, recipe=recipe)

    def trial_end(self, result: Any) -> None:
        self._observe("orchestrator_trial_end", result=result)

    def run_end(self, config: Any, run_dir: Any, pareto: list) -> None:
        self._observe("orchestrator_run_end", config=config, run_dir=run_dir, pareto=pareto)

    def _observe(self, hook_name: str, **kwargs: Any) -> None:
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            try:
                impl.function(*[kwargs[a] for a in impl.argnames])
            except Exception as exc:
                warnings.warn(f"plugin '{impl.plugin_name}' failed in {hook_name}: {type(exc).__name__}: {exc}",
                              RuntimeWarning, stacklevel=2)

    # --- introspection -------------------------------------------------------------------
    def plugins(self) -> list[PluginInfo]:
        infos = {}
        for name, plugin in self.pm.list_name_plugin():
            dist, version = self._dists.get(name, (None, None))
            hooks = sorted(h.name for h in self.pm.get_hookcallers(plugin) or [])
            infos[name] = PluginInfo(name, dist, version, hooks)
        for (family, sname), owner in self.catalogue.owners.items():
            info = infos[owner]
            if family == "task":
                info.tasks.append(sname)
            else:
                info.strategies.setdefault(family, []).append(sname)
        return sorted(infos.values(), key=lambda i: i.name)


def _add(cat: Catalogue, family: str, name: str, obj: Any, plugin: str) -> None:
    key = (family, name)
    if key in cat.owners:
        raise PluginError(f"{family} '{name}' is registered by both plugin '{cat.owners[key]}' and plugin '{plugin}'")
    cat.owners[key] = plugin
    if family == "task":
        cat.tasks[name] = obj
    else:
        cat.strategies[family][name] = obj


#: a plugin module (or object) may declare the orchestrator versions it works with, e.g. ">=0.2,<1"
REQUIRES_ATTR = "ORCHESTRATOR_REQUIRES"
DISTRIBUTION = "compression-orchestrator"


def check_orchestrator_requirement(name: str, plugin: object, dist: tuple[str | None, str | None],
                                   requires: list[str] | None) -> None:
    """Refuse, in one line, a plugin made for other orchestrator versions: its ``ORCHESTRATOR_REQUIRES``
    and its distribution's own requirement on compression-orchestrator (which an install with
    ``--no-deps`` or an upgrade of the orchestrator alone can leave unmet)."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.utils import canonicalize_name
    from packaging.version import Version

    own = Version(_own_version())
    who = f"plugin '{name}'" + (f" ({dist[0]} {dist[1]})" if dist[0] else "")
    wanted: list[tuple[str, str]] = []
    declared = getattr(plugin, REQUIRES_ATTR, None)
    if declared is not None:
        wanted.append((REQUIRES_ATTR, str(declared)))
    for line in requires or []:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        if canonicalize_name(req.name) == DISTRIBUTION and (req.marker is None or req.marker.evaluate({"extra": ""})):
            wanted.append(("its package's requirements", str(req.specifier)))
    for where, spec in wanted:
        try:
            ok = own in SpecifierSet(spec, prereleases=True)
        except InvalidSpecifier:
            raise PluginError(f"{who}: {REQUIRES_ATTR} = {spec!r} is not a version specifier such as '>=0.2'") from None
        if not ok:
            raise PluginError(f"{who} requires {DISTRIBUTION}{spec} ({where}); this is {own}: upgrade the "
                              f"orchestrator or install a version of the plugin made for {own}, or set "
                              f"{BLOCK_ENV}={name} to run without it")


def _own_version() -> str:
    from orchestrator._version import __version__

    return __version__


@lru_cache(maxsize=1)
def get_host() -> PluginHost:
    """The process-wide plugin host (plugins load once per process)."""
    return PluginHost()


def builtin_name(module: str) -> str:
    """``orchestrator_plugins.pruners.channel`` -> ``builtin.pruners.channel``."""
    return "builtin." + module.removeprefix("orchestrator_plugins.")
