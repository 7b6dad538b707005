"""The docs stay true: the config and hook references are generated, every hook is documented as
declared, every built-in strategy has an entry, README's links resolve."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from orchestrator import hookspecs
from orchestrator.config_reference import render

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_configuration_reference_is_generated_from_the_schema():
    assert (DOCS / "configuration.md").read_text() == render(), (
        "docs/configuration.md is stale: python -m orchestrator.config_reference > docs/configuration.md")


def test_hook_reference_is_generated_from_the_hookspecs():
    from orchestrator.hooks_reference import render as render_hooks

    assert (DOCS / "hooks.md").read_text() == render_hooks(), (
        "docs/hooks.md is stale: python -m orchestrator.hooks_reference > docs/hooks.md")


def test_every_hook_is_documented_with_its_signature():
    text = (DOCS / "hooks.md").read_text()
    documented = dict(re.findall(r"^### `(orchestrator_\w+)\(([^)]*)\)`", text, flags=re.M))
    declared = {name: ", ".join(inspect.signature(fn).parameters)
                for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("orchestrator_")}
    assert documented == declared


def test_every_builtin_strategy_has_a_reference_entry(host):
    text = (DOCS / "strategies.md").read_text()
    for family, strategies in host.catalogue.strategies.items():
        for name in strategies:
            if not host.catalogue.owners[(family, name)].startswith("builtin."):
                continue  # an installed third-party plugin documents its own
            assert f"### `{name}`" in text, f"{family} '{name}' is missing from docs/strategies.md"


def test_readme_links_resolve():
    readme = (DOCS.parent / "README.md").read_text()
    for target in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (DOCS.parent / target).is_file(), target


def test_cli_reference_is_generated_from_the_commands():
    from orchestrator.cli_reference import render as render_cli

    assert (DOCS / "cli.md").read_text() == render_cli(), (
        "docs/cli.md is stale: python -m orchestrator.cli_reference > docs/cli.md")


def test_the_documentation_site_builds_in_strict_mode(tmp_path):
    """A broken link, a missing anchor or a page left out of the navigation fails the build."""
    import subprocess
    import sys

    site = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
                           "-f", str(DOCS / "mkdocs" / "mkdocs.yml"), "-d", str(site)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for page in DOCS.glob("*.md"):
        assert (site / page.with_suffix(".html").name).is_file(), f"{page.name} is not in the site"
    assert (site / "images" / "report-front.png").is_file()
