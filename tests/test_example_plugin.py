"""The example third-party plugin (examples/orchestrator-obd-int4), installed as a user installs one: a
search reaches its strategies through the ``orchestrator`` entry point alone, and ``orchestrator plugins``
names its distribution, version and strategies."""

from __future__ import annotations

import importlib.metadata as md
import json
import os
from pathlib import Path

import onnx
import pytest
import yaml

import orchestrator
from helpers import quick_config
from orchestrator.cli.app import main

DISTRIBUTION = "orchestrator-obd-int4"
ENTRY_POINT = "obd_int4"
REQUIRE_ENV = "ORCHESTRATOR_REQUIRE_EXAMPLE_PLUGIN"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def plugin_version() -> str:
    try:
        version = md.version(DISTRIBUTION)
    except md.PackageNotFoundError:
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(f"{REQUIRE_ENV} is set but {DISTRIBUTION} is not installed")
        pytest.skip(f"the example plugin is not installed: pip install -e examples/{DISTRIBUTION}")
    return version


@pytest.fixture(scope="module")
def run(plugin_version, tmp_path_factory):
    """Two trials on digits, each scored by ``obd``, channel-pruned, fine-tuned for an epoch and shipped
    by ``int4-weight``; the default plugin host, so the strategies come from the entry point."""
    out = tmp_path_factory.mktemp("example-plugin")
    space = out / "space.yaml"
    space.write_text(yaml.safe_dump({"stages": {
        "score": {"obd": {"batches": [1]}},
        "prune": {"channel": {"ratio": {"low": 0.1, "high": 0.3}}},
        "train": {"none": {"epochs": [1]}},
        "quantize": {"int4-weight": {"block_size": [16, 32]}},
    }}))
    config = quick_config(search_space=str(space), budget={"n_trials": 2}, execution={"executor": "local"},
                          constraints={})
    return orchestrator.search(config, out=out / "run", progress=False)


def test_a_search_reaches_both_strategies_through_the_entry_point_alone(run, host):
    assert host.catalogue.owners[("scorer", "obd")] == ENTRY_POINT
    assert host.catalogue.owners[("quantizer", "int4-weight")] == ENTRY_POINT
    assert [t.state for t in run.trials] == ["COMPLETE", "COMPLETE"], [t.error for t in run.trials]
    for t in run.trials:
        assert t.recipe["score"]["strategy"] == "obd" and t.recipe["quantize"]["strategy"] == "int4-weight"
        assert t.description.startswith("channel") and "by obd" in t.description and "int4-weight g" in t.description
        assert t.metrics["size_mb"] < run.baseline["size_mb"]
    assert run.pareto
    for t in run.pareto:
        shipped = onnx.load(str(run.artifact(t.number)))
        nbits = [n for n in shipped.graph.node if n.op_type == "MatMulNBits"]
        assert nbits and all(a.i == 4 for n in nbits for a in n.attribute if a.name == "bits")
        assert not [n for n in shipped.graph.node if n.op_type == "Gemm"]  # the classifier went 4-bit


def test_orchestrator_plugins_lists_the_plugin_with_its_distribution_version_and_strategies(plugin_version,
                                                                                         capsys):
    assert main(["plugins", "--json"]) == 0
    [entry] = [p for p in json.loads(capsys.readouterr().out) if p["name"] == ENTRY_POINT]
    assert entry["distribution"] == DISTRIBUTION and entry["version"] == plugin_version
    assert entry["strategies"] == {"scorer": ["obd"], "quantizer": ["int4-weight"]}
    assert entry["hooks"] == ["orchestrator_register_quantizers", "orchestrator_register_scorers"]


def test_the_search_space_the_plugin_ships_resolves_with_its_strategies(plugin_version, host):
    from orchestrator.spaces import resolve_space

    space = resolve_space(str(ROOT / "examples" / DISTRIBUTION / "space.yaml"), host.catalogue)
    assert "obd" in space.strategies("score") and "int4-weight" in space.strategies("quantize")
