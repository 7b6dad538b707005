"""A small finished run whose trials cover what export and apply must handle."""

from __future__ import annotations

import pytest

#: One recipe per default of this space, in this order (trial numbers): fine-tuned, channel-pruned and
#: fine-tuned, then each quantizer on the fine-tuned model. Two epochs each, so every trial trains.
EXPORT_SPACE = """\
description: export and apply tests
stages:
  score:
    magnitude: {p: [1]}
  prune:
    none: {}
    channel: {ratio: [0.4], global_pruning: [false], round_to: [1], prune_heads: [false]}
  train:
    none: {epochs: [2]}
  quantize:
    none: {}
    static-int8: {calibration: [minmax], per_channel: [true], calibration_batches: [2]}
    fp16: {}
"""


@pytest.fixture(scope="session")
def export_run(tmp_path_factory):
    """A run of 4 trials on digits, every trial's model kept: ``.result``, the SearchResult;
    ``.trial``, a role (``finetuned``, ``pruned``, ``int8``, ``fp16``) -> its TrialResult."""
    from types import SimpleNamespace

    import orchestrator
    from helpers import quick_config

    root = tmp_path_factory.mktemp("export-run")
    (root / "space.yaml").write_text(EXPORT_SPACE)
    config = quick_config(search_space=str(root / "space.yaml"), budget={"n_trials": 4}, keep_all_artifacts=True,
                          execution={"executor": "ray"})
    result = orchestrator.search(config, out=root / "run", progress=False, log=lambda msg: None)
    by_description = {}
    for t in result.trials:
        assert t.state == "COMPLETE", t.error
        by_description[t.description] = t
    roles = {"pruned": "channel", "int8": "static-int8", "fp16": "fp16"}
    trials = {role: next(t for d, t in by_description.items() if word in d) for role, word in roles.items()}
    trials["finetuned"] = next(t for d, t in by_description.items() if "->" not in d)
    return SimpleNamespace(result=result, trial=trials, dir=result.run_dir)
