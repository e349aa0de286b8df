"""The generated CLI: at most 12 options a command, shared options declared once, every generated
option's default the settings class's, every setting reachable through --config, and ``rayflavor
config show`` printing what a command would run."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from rayflavor import configfile
from rayflavor.cli import options
from rayflavor.cli.config import commands, to_toml
from rayflavor.cli.main import cli
from rayflavor.settings_model import base_type, fields_of

ROOT = Path(__file__).resolve().parents[1]
MAX_OPTIONS = 12


def _walk(command: click.Command, path: str = "rayflavor"):
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from _walk(sub, f"{path} {name}")


def shown(command: click.Command) -> list[click.Option]:
    return [p for p in command.params if isinstance(p, click.Option) and not p.hidden and "--help" not in p.opts]


@pytest.mark.parametrize("path, command", list(_walk(cli)), ids=lambda x: x if isinstance(x, str) else "")
def test_every_command_shows_at_most_12_options_and_hides_none(path, command):
    assert len(shown(command)) <= MAX_OPTIONS, (path, [p.opts[0] for p in shown(command)])
    assert not [p for p in command.params if isinstance(p, click.Option) and p.hidden], path


def test_shared_options_are_declared_once():
    """``--address``, ``--config``, ``--out``, ``--data``, ``--seed`` are written as click options in
    one place (rayflavor/cli/options.py); a settings class's ``seed`` goes through ``seed_setting``."""
    for name in ("--address", "--config", "--out", "--data", "--seed"):
        where = [p.relative_to(ROOT).as_posix() for p in (ROOT / "rayflavor" / "cli").glob("*.py")
                 for node in ast.walk(ast.parse(p.read_text()))
                 if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in
                 ("option", "Option") and any(isinstance(a, ast.Constant) and a.value == name for a in node.args)]
        assert where == ["rayflavor/cli/options.py"], (name, where)


@pytest.mark.parametrize("name", sorted(commands()))
def test_generated_options_show_the_settings_defaults(name):
    settable = commands()[name]
    default = settable.cls()
    opts = options.setting_options(settable.cls)
    assert opts, name
    for opt in opts:
        value = default
        for part in opt.name.split("__"):
            value = getattr(value, part)
        assert opt.default == value or (opt.default is None and value is None), (name, opt.name)


@pytest.mark.parametrize("name", sorted(commands()))
def test_config_show_prints_every_setting_as_a_config_file_that_gives_them_back(name, tmp_path):
    settable = commands()[name]
    preset = [p for p in settable.presets if p != settable.default_preset]
    args = ["config", "show", *name.split(), *(["--preset", preset[0]] if preset else [])]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    (tmp_path / "shown.toml").write_text(r.output)
    settings = configfile.from_mapping(settable.cls, tomllib.loads(r.output))
    want = settable.preset(preset[0] if preset else None)
    assert settings == want
    # every declared setting is printed (a setting without a value as a comment line)
    def leaves(cls, prefix=""):
        for f, (s, tp) in fields_of(cls).items():
            inner, _ = base_type(tp)
            if hasattr(inner, "__dataclass_fields__"):
                yield from leaves(inner, f"{prefix}{f}.")
            else:
                yield f
    for leaf in leaves(settable.cls):
        assert f"{leaf} = " in r.output, leaf


def test_config_show_says_where_each_value_came_from(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("islands = 8\n[island]\npatience = 300\n")
    r = CliRunner().invoke(cli, ["config", "show", "scan", "--preset", "paper", "--config", str(cfg), "--regime", "down"])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert f"islands = 8  # config file {cfg}" in lines
    assert "patience = 300  # config file " + str(cfg) in lines
    assert 'regime = "down"  # command line' in lines
    assert "pop_size = 156  # preset paper" in lines
    assert "chunk_seconds = 1.0  # default" in lines
    r = CliRunner().invoke(cli, ["config", "show", "scan", "--islands", "0"])
    assert r.exit_code == 2 and r.output.count("\n") == 1 and "islands must be an integer in [1, 1000000]" in r.output
    r = CliRunner().invoke(cli, ["config", "show", "nothing"])
    assert r.exit_code == 2 and "name a command with settings" in r.output


@pytest.mark.parametrize("text, message", [
    ("islands = 2.0\n", "islands: expected an integer, got 2.0"),
    ("islands = 1e300\n", "islands: expected an integer, got 1e+300"),
    ("max_restarts = 1e22\n", "max_restarts: expected an integer, got 1e+22"),
    ("max_restarts = 10000000\n", "max_restarts must be an integer in [0, 1000000]"),
    ("seed = -1\n", "seed must be an integer in [0, 9223372036854775807]"),
    ("[island]\nmass_tolerance = 1.0\n", "mass_tolerance must be a finite number in (0, 1)"),
])
def test_a_config_file_is_checked_at_the_door_like_the_command_line(tmp_path, text, message):
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    r = CliRunner().invoke(cli, ["config", "show", "scan", "--config", str(cfg)])
    assert r.exit_code == 2 and message in r.output and r.output.count("\n") == 1, r.output


def test_islands_is_read_from_the_command_line_without_a_string_map():
    """`--islands` is the field ``islands`` of ScanSettings: generated from its declaration, given to
    :func:`rayflavor.orchestration.islands.run_scan` in the settings object."""
    import rayflavor.cli.scan as scan_cli

    assert not hasattr(scan_cli, "SETTING_OF")
    opt = next(o for o in options.setting_options(scan_cli.ScanSettings) if o.opts == ["--islands"])
    assert opt.name == "islands" and fields_of(scan_cli.ScanSettings)["islands"][0].option is True
    ctx = scan_cli.scan.make_context("scan", ["--islands", "7"])
    assert options.given(ctx) == {"islands": 7}


def test_to_toml_comments_out_settings_without_a_value():
    text = to_toml({"a": None, "b": 1, "t": {"c": "x"}}, {("b",): "preset p"}, "h")
    assert text.splitlines() == ["# h", "# a = (none)  # default", "b = 1  # preset p", "", "[t]", 'c = "x"  # default']
    assert tomllib.loads(text) == {"b": 1, "t": {"c": "x"}}
