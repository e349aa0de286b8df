"""Click options generated from the settings classes, and the options every command shares.

A settings field declared with ``option=...`` (:mod:`rayflavor.settings_model`) becomes a click
option here: its type, bounds, choices, help and shown default come from that one declaration.
A generated option has no click default: what the user typed is collected, per field path, by
:func:`given`, and laid over the preset and the ``--config`` file by :func:`resolve`, so that

    defaults < ``--preset`` < ``--config FILE`` < options typed on the command line

holds for every command.  A typed value is checked against the field's bounds when the command
line is parsed (one ``Error:`` line naming the option).  A tuple setting (``targets``) is an
option that may be repeated, each value read by the setting's ``parse``.

The shared options (``--address``, ``--seed`` of a command without settings, ``--out``,
``--data``, ``--config``, ``--preset``) are declared once, below, in the manner of pip-tools'
``scripts/options.py``.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from rayflavor import configfile
from rayflavor.settings_model import MAX_SEED, Spec, base_type, fields_of

_GIVEN = "rayflavor.given"


# ------------------------------------------------------------------ settings of a command


@dataclass(frozen=True)
class Settable:
    """The settings of one command: its class, its named presets and the preset used by default."""

    cls: type
    presets: dict[str, Any]
    default_preset: str

    def preset(self, name: str | None) -> Any:
        """The settings object of preset ``name`` (None: the default preset); ValueError naming the choices."""
        name = self.default_preset if name is None else name
        try:
            return self.presets[name]
        except KeyError:
            raise ValueError(f"unknown preset {name!r} (use {', '.join(self.presets)})") from None


def given(ctx: click.Context) -> dict:
    """The settings typed on the command line, as a nested mapping (``{"island": {"regime": "down"}}``)."""
    nested: dict = {}
    for path, value in ctx.meta.get(_GIVEN, {}).items():
        target = nested
        for name in path[:-1]:
            target = target.setdefault(name, {})
        target[path[-1]] = value
    return nested


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _paths(mapping: dict, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    flat = {}
    for k, v in mapping.items():
        if isinstance(v, dict):
            flat.update(_paths(v, (*prefix, k)))
        else:
            flat[(*prefix, k)] = v
    return flat


def resolve(settable: Settable, preset: str | None, config: str | Path | None, typed: dict) -> tuple[Any, dict]:
    """``(settings, sources)``: defaults < preset < config file < ``typed`` (:func:`given`), and for
    every setting path where its value came from (``default``, ``preset P``, ``config file F``,
    ``command line``).  ValueError (:class:`~rayflavor.configfile.ConfigError`) in one line."""
    name = settable.default_preset if preset is None else preset
    start = settable.preset(name)
    merged = configfile.to_mapping(start)
    sources = dict.fromkeys(_paths(merged), "default")
    plain = _paths(configfile.to_mapping(settable.cls()))
    for path, value in _paths(merged).items():
        if plain.get(path, value) != value or path not in plain:
            sources[path] = f"preset {name}"
    if config is not None:
        from_file = configfile.load_config(config)
        merged = _merge(merged, from_file)
        sources.update(dict.fromkeys(_paths(from_file), f"config file {config}"))
    merged = _merge(merged, typed)
    sources.update(dict.fromkeys(_paths(typed), "command line"))
    return configfile.from_mapping(settable.cls, merged, where="settings"), sources


# ------------------------------------------------------------------ options from fields


class _Parsed(click.ParamType):
    """A click type from a setting's ``parse`` function (e.g. durations: ``10m`` -> 600.0)."""

    def __init__(self, parse: Callable[[str], Any], name: str) -> None:
        self.parse, self.name = parse, name

    def convert(self, value, param, ctx):
        if not isinstance(value, str):
            return value
        try:
            return self.parse(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def _range_text(s: Spec, tp: Any) -> str:
    """`` In [lo, hi].`` of a number setting as --help shows it (a bound it does not declare is left out)."""
    from rayflavor.settings_model import interval

    if s.hi is None:
        return "" if s.lo is None else f" {'>' if s.lo_open else '>='} {s.lo:g}." if tp is float else f" >= {s.lo}."
    return " In " + interval(s, tp).replace(str(MAX_SEED), "2^63-1") + "."


def _option(path: tuple[str, ...], s: Spec, tp: Any, default: Any, decl: str) -> click.Option:
    """The click option ``decl`` that sets the setting at ``path`` (its spec ``s``, annotation ``tp``)
    and records its value for :func:`given` when it was typed on the command line."""
    from rayflavor.settings_model import check_value

    inner, _ = base_type(tp)

    def record(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is not None:
            try:
                value = check_value(path[-1], value, s, tp)
            except ValueError as exc:
                raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
            if ctx.get_parameter_source(param.name) == click.core.ParameterSource.COMMANDLINE:
                ctx.meta.setdefault(_GIVEN, {})[path] = value
        return value

    if s.choices is not None:
        kind: Any = click.Choice([str(c) for c in s.choices])
    elif s.parse is not None:
        kind = _Parsed(s.parse, s.metavar or "TEXT")
    else:
        kind = {int: click.INT, float: click.FLOAT, str: click.STRING}.get(inner, click.STRING)
    extra = _range_text(s, inner) if s.choices is None and inner in (int, float) and s.parse is None else ""
    name = "__".join(path)
    if typing.get_origin(inner) is tuple:  # a list setting: the option may be repeated
        return click.Option([decl, name], type=kind, multiple=True, default=default, expose_value=False,
                            callback=record, metavar=s.metavar, help=s.help, show_default=bool(default))
    if inner is bool:
        return click.Option([f"{decl}/--no-{decl[2:]}", name], default=default, expose_value=False,
                            callback=record, help=s.help, show_default=True)
    return click.Option([decl, name], type=kind, default=default, expose_value=False, callback=record,
                        metavar=s.metavar, help=s.help + extra, show_default=default is not None)


def _decl(name: str, option: bool | str) -> str:
    return option if isinstance(option, str) else "--" + name.replace("_", "-")


def setting_options(cls: type) -> list[click.Option]:
    """The click options of every field of ``cls`` declared with ``option`` (nested settings
    classes included as their parent field says), in declaration order."""
    default = cls()
    out: list[click.Option] = []

    def walk(klass: type, obj: Any, prefix: tuple[str, ...], only: dict | None) -> None:
        for name, (s, tp) in fields_of(klass).items():
            option = s.option if only is None else only.get(name)
            if not option:
                continue
            inner, _ = base_type(tp)
            value = getattr(obj, name)
            if dataclasses.is_dataclass(inner):
                walk(inner, value, (*prefix, name), option if isinstance(option, dict) else None)
            elif isinstance(option, tuple):  # (name, help) given by the parent field: the option in its context
                out.append(_option((*prefix, name), dataclasses.replace(s, help=option[1]), tp, value,
                                   _decl(name, option[0])))
            else:
                out.append(_option((*prefix, name), s, tp, value, _decl(name, option)))

    walk(cls, default, (), None)
    return out


def field_option(cls: type, name: str, decl: str | None = None, *, param: str | None = None) -> Callable:
    """A plain click option (passed to the command function as ``param``, default ``name``) with
    the type, bounds, choices, help and default of setting ``name`` of ``cls``: for commands that
    take single settings as arguments (``evaluate --mass-tolerance``, ``diffusion train``)."""
    from rayflavor.settings_model import check_value

    s, tp = fields_of(cls)[name]
    default = getattr(cls(), name)
    option = _option((name,), s, tp, default, decl or _decl(name, True))

    def check(ctx: click.Context, p: click.Parameter, value: Any) -> Any:
        try:
            return check_value(name, value, s, tp)
        except ValueError as exc:
            raise click.BadParameter(str(exc), ctx=ctx, param=p) from None

    return click.option(*option.opts, param or name, type=option.type, default=default, show_default=True,
                        metavar=s.metavar, help=option.help, callback=check)


def with_options(*options: Callable | click.Option) -> Callable:
    """Decorate a command with ``options`` (click decorators or Option objects), listed in this order."""
    def deco(f):
        for opt in reversed(options):
            if isinstance(opt, click.Parameter):
                if not hasattr(f, "__click_params__"):
                    f.__click_params__ = []
                f.__click_params__.append(opt)
            else:
                f = opt(f)
        return f
    return deco


def settings_of(settable: Settable, *, preset_help: str = "Named settings to start from.") -> Callable:
    """``--preset``, ``--config`` and the generated options of ``settable``'s class."""
    return with_options(
        click.option("--preset", "preset", type=click.Choice(list(settable.presets)), default=None,
                     help=f"{preset_help} [default: {settable.default_preset}]"),
        config_option(),
        *setting_options(settable.cls),
    )


# ------------------------------------------------------------------ shared options (declared once)


#: Ray's single-host switch: with it "0", a Ray started in this process registers on 127.0.0.1 and
#: every one of its processes listens there, instead of on this machine's other addresses. Ray reads
#: it when it is imported, and its processes inherit it.
LOOPBACK_ENV = ("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


def embedded_ray_on_loopback(ctx: click.Context | None, param: click.Parameter | None, address: str | None) -> str | None:
    """``--address``'s callback: a command that will start an embedded Ray (no ``--address`` and no
    ``RAY_ADDRESS``, or ``--address local``) keeps it on 127.0.0.1, since nothing outside this
    machine needs to reach it. Runs while the command line is parsed, before anything imports Ray;
    a value the user set for the variable is kept, and joining a cluster is left alone."""
    if address == "local" or (address is None and not os.environ.get("RAY_ADDRESS")):
        os.environ.setdefault(*LOOPBACK_ENV)
    return address


def address_option(**kw) -> Callable:
    """``--address``: which Ray to use."""
    return click.option("--address", default=None, metavar="ADDRESS", callback=embedded_ray_on_loopback,
                        help="Ray cluster address (host:port, ray://host:port, 'auto'); default: RAY_ADDRESS or an "
                             "embedded local Ray (on 127.0.0.1 only).", **kw)


def config_option() -> Callable:
    """``--config FILE``: settings from a TOML or JSON file (a stored manifest repeats its run)."""
    return click.option("--config", "config", default=None, metavar="FILE",
                        help="Settings from a TOML or JSON file (a stored scan.json / run.json repeats that run); "
                             "options typed here override it. `rayflavor config show` prints them all.")


def out_option(help: str, *, required: bool = False, default: str | None = None, name: str = "out") -> Callable:
    """``--out``: where a command writes (a directory or a storage URI)."""
    return click.option("--out", name, required=required, default=default, show_default=default is not None,
                        metavar="PATH|URI", help=help)


def data_option(help_extra: str = "", name: str = "data_name") -> Callable:
    """``--data``: an experimental data set (a shipped name or a TOML file)."""
    from rayflavor.physics import data as data_mod

    return click.option("--data", name, default=None, metavar="NAME|PATH",
                        help=f"Experimental data set: a shipped name ({', '.join(data_mod.SHIPPED)}) or a TOML file "
                             f"in the same format. {help_extra}".rstrip())


def seed_option(default: int = 0, help: str = "Base seed.") -> Callable:
    """``--seed`` of a command without a settings class (benchmarks, the dataset)."""
    return click.option("--seed", type=click.IntRange(0, MAX_SEED), default=default, show_default=True, help=help)


__all__ = ["Settable", "address_option", "config_option", "data_option", "field_option", "given", "out_option", "resolve",
           "seed_option", "setting_options", "settings_of", "with_options"]
