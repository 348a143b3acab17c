"""Documentation: man pages generated from the click definitions are current; every command is
documented in the README and has a man page with EXAMPLES and EXIT STATUS."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cqia_cli.cli import available_commands

ROOT = Path(__file__).resolve().parent.parent


def test_man_pages_are_current():
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_man.py"), "--check"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("verb", available_commands())
def test_each_command_has_a_full_man_page(verb):
    page = (ROOT / "man" / f"cqia-{verb}.1").read_text("utf-8")
    for section in (".SH NAME", ".SH SYNOPSIS", ".SH DESCRIPTION", ".SH OPTIONS",
                    ".SH EXAMPLES", ".SH EXIT STATUS", ".SH SEE ALSO"):
        assert section in page
    assert "\\fB65\\fR" in page and "\\fB66\\fR" in page


def test_main_page_documents_completion_and_commands():
    page = (ROOT / "man" / "cqia.1").read_text("utf-8")
    assert ".SH SHELL COMPLETION" in page and "_CQIA_COMPLETE=bash_source" in page
    for verb in available_commands():
        assert f"cqia\\-{verb}" in page


@pytest.mark.parametrize("verb", available_commands())
def test_readme_documents_each_command(verb):
    readme = (ROOT / "README.md").read_text("utf-8")
    assert f"cqia {verb}" in readme


def test_command_summaries_are_the_commands_own_short_help():
    """`cqia --help` lists each verb with a summary that cli.py holds (so that it need not
    import the verb); the verb's short_help owns it, and the copy must not drift."""
    import importlib

    from cqia_cli.cli import COMMANDS

    for name in available_commands():
        module, summary = COMMANDS[name]
        cmd = importlib.import_module(module).cli
        assert cmd.short_help == summary, (
            f"cli.COMMANDS[{name!r}] says {summary!r} but {module}.cli's short_help is "
            f"{cmd.short_help!r}: copy the short_help into cli.py")


def test_filter_rule_lists_name_every_rule():
    """filter's --help, README and docs/filter.md name every rule of the registry, and --help
    names the rules that are off by default as such."""
    import re

    from cqia_cli.commands.filter import cli
    from cqia_cli.filtering.rules import RULES

    help_text = " ".join(cli.help.split())
    readme = (ROOT / "README.md").read_text("utf-8")
    docs = (ROOT / "docs" / "filter.md").read_text("utf-8")
    listed = re.search(r"Rules \(see --list-rules\): ([^.]+)\.", help_text)
    assert listed, "filter --help lists its rules as 'Rules (see --list-rules): a, b, ...'"
    assert sorted(n.strip() for n in listed.group(1).split(",")) == sorted(RULES)
    off = {name for name, cls in RULES.items() if not cls.default_on}
    but = re.search(r"all but ([a-z, -]+?) and ([a-z-]+),", help_text)
    assert but and {*but.group(1).split(", "), but.group(2)} == off, "the rules off by default"
    for name in RULES:
        assert f"`{name}`" in docs or f"| {name} " in docs or f"{name}" in docs, name
        assert name in readme, f"README does not name the filter rule {name}"
