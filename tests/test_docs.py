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
