"""The contract suites catch broken strategies, each by the test that names its fault, and nothing else.

Every broken strategy below has one fault; one pytest session, in a child process, runs the suites on
them, and exactly the tests expected to fail do.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from xml.etree import ElementTree

pytest_plugins = ("pytester",)

BROKEN = textwrap.dedent('''
    import threading

    import pytest
    import torch
    from torch import nn
    from torch.nn.utils import parametrize

    from orchestrator.params import Choice, Float, Int
    from orchestrator.strategies import Distiller, Pruner, Quantizer, Scorer
    from orchestrator.testing import DistillerContract, PrunerContract, QuantizerContract, ScorerContract
    from orchestrator.training import fit


    class Magnitude(Scorer):
        name = "contract-magnitude"

        def score(self, model, ctx, params):
            return {n: p.detach().abs() for n, p in model.named_parameters()}


    class BadlyDeclared(Magnitude):
        name = "Bad Name"
        space = {"p": Float(0.0, 1.0, log=True)}
        defaults = {"q": 1}
        strength = "q"


    class Negative(Magnitude):
        def score(self, model, ctx, params):
            return {n: -s for n, s in super().score(model, ctx, params).items()}


    class Flattened(Magnitude):
        def score(self, model, ctx, params):
            return {n: s.flatten() for n, s in super().score(model, ctx, params).items()}


    class Unseeded(Magnitude):
        def score(self, model, ctx, params):
            gen = torch.Generator()
            gen.seed()
            return {n: torch.rand(p.shape, generator=gen) for n, p in model.named_parameters()}


    class InPlace(Magnitude):
        def score(self, model, ctx, params):
            with torch.no_grad():
                for p in model.parameters():
                    p.abs_()
            return super().score(model, ctx, params)


    class Unpicklable(Magnitude):
        def __init__(self):
            self.lock = threading.Lock()


    class WantsBatchNorm(Pruner):
        """Says it applies to every model, and needs a BatchNorm."""
        name = "contract-wants-batchnorm"
        needs_scores = False

        def prune(self, model, scores, ctx, params):
            if not any(isinstance(m, nn.BatchNorm2d) for m in model.modules()):
                raise RuntimeError("no BatchNorm2d")
            return model


    class RecommendsWhatFails(Pruner):
        """Sets, for a model without convolutions, the one setting under which it raises."""
        name = "contract-recommends"
        needs_scores = False
        space = {"hard": Choice([False, True])}
        defaults = {"hard": False}

        def defaults_for(self, model):
            return self.defaults if any(isinstance(m, nn.Conv2d) for m in model.modules()) else {"hard": True}

        def prune(self, model, scores, ctx, params):
            if params["hard"]:
                raise RuntimeError("hard pruning is broken")
            return model


    class NarrowsBadly(Pruner):
        """Widens its range for a model with convolutions, and leaves out its own default elsewhere."""
        name = "contract-narrows"
        needs_scores = False
        space = {"ratio": Float(0.1, 0.5)}
        defaults = {"ratio": 0.3}

        def space_for(self, model, space):
            if any(isinstance(m, nn.Conv2d) for m in model.modules()):
                return {"ratio": Float(0.1, 0.9)}
            return {"ratio": Choice([0.1])}

        def prune(self, model, scores, ctx, params):
            return model


    class Mask(nn.Module):
        def __init__(self, mask):
            super().__init__()
            self.register_buffer("mask", mask)

        def forward(self, w):
            return w * self.mask


    class KeepsMasks(Pruner):
        """Masks the smaller half of the first linear layer's weights, and never makes them permanent."""
        name = "contract-keeps-masks"
        needs_scores = False

        def prune(self, model, scores, ctx, params):
            layer = next(m for m in model.modules() if isinstance(m, nn.Linear))
            parametrize.register_parametrization(
                layer, "weight", Mask(layer.weight.detach().abs() > layer.weight.detach().abs().median()))
            return model


    class ZeroesWithoutMasks(Pruner):
        """Zeroes weights in place: the train stage regrows them."""
        name = "contract-zeroes"
        needs_scores = False

        def prune(self, model, scores, ctx, params):
            with torch.no_grad():
                for m in model.modules():
                    if isinstance(m, (nn.Conv2d, nn.Linear)):
                        m.weight.mul_(m.weight.abs() > m.weight.abs().median())
            return model


    class FineTune(Distiller):
        name = "contract-finetune"
        space = {"epochs": Int(0, 4)}
        defaults = {"epochs": 3}

        def train(self, model, ctx, params):
            fit(model, ctx.task, ctx.data, epochs=params["epochs"], lr=1e-3, batch_size=64, seed=ctx.seed,
                on_epoch=ctx.report_epoch)
            return model


    class Deaf(FineTune):
        """Reports every epoch and ignores the answer."""

        def train(self, model, ctx, params):
            for epoch in range(1, params["epochs"] + 1):
                fit(model, ctx.task, ctx.data, epochs=1, lr=1e-3, batch_size=64, seed=ctx.seed)
                ctx.report_epoch(epoch, 0.5)
            return model


    class TeacherInTrainMode(FineTune):
        """Runs the teacher in training mode: its BatchNorm statistics move."""

        def train(self, model, ctx, params):
            ctx.teacher.train()
            with torch.no_grad():
                ctx.teacher(ctx.data.train[0][:64])
            ctx.teacher.eval()
            return super().train(model, ctx, params)


    class Overclaiming(Quantizer):
        """Ships the fp32 file, claims 8 bytes a weight, and accepts every runtime."""
        name = "contract-overclaiming"
        min_bytes_per_weight = 8.0

        def applicable(self, model, ctx):
            return None

        def quantize(self, model, fp32_path, out_path, ctx, params):
            return fp32_path


    class TestBadlyDeclared(ScorerContract):
        @pytest.fixture
        def strategy(self):
            return BadlyDeclared()

        @pytest.fixture
        def params(self):
            return {"p": 0.5}


    class TestNegative(ScorerContract):
        @pytest.fixture
        def strategy(self):
            return Negative()


    class TestFlattened(ScorerContract):
        @pytest.fixture
        def strategy(self):
            return Flattened()


    class TestUnseeded(ScorerContract):
        @pytest.fixture
        def strategy(self):
            return Unseeded()


    class TestInPlace(ScorerContract):
        @pytest.fixture
        def strategy(self):
            return InPlace()


    class TestUnpicklable(ScorerContract):
        @pytest.fixture
        def strategy(self):
            return Unpicklable()


    class TestWantsBatchNorm(PrunerContract):
        @pytest.fixture
        def strategy(self):
            return WantsBatchNorm()

        @pytest.fixture
        def prunes(self):
            return False


    class TestRecommendsWhatFails(PrunerContract):
        @pytest.fixture
        def strategy(self):
            return RecommendsWhatFails()

        @pytest.fixture
        def prunes(self):
            return False


    class TestNarrowsBadly(PrunerContract):
        @pytest.fixture
        def strategy(self):
            return NarrowsBadly()

        @pytest.fixture
        def params(self):
            return {"ratio": 0.3}

        @pytest.fixture
        def prunes(self):
            return False


    class TestKeepsMasks(PrunerContract):
        @pytest.fixture
        def strategy(self):
            return KeepsMasks()


    class TestZeroes(PrunerContract):
        @pytest.fixture
        def strategy(self):
            return ZeroesWithoutMasks()


    class TestDeaf(DistillerContract):
        @pytest.fixture
        def strategy(self):
            return Deaf()


    class TestTeacherInTrainMode(DistillerContract):
        @pytest.fixture
        def strategy(self):
            return TeacherInTrainMode()


    class TestOverclaiming(QuantizerContract):
        @pytest.fixture
        def strategy(self):
            return Overclaiming()
''')

#: test class -> (the tests it runs, by name prefix), the tests expected to fail
RUNS = {
    "TestBadlyDeclared": (["test_name", "test_space", "test_defaults", "test_strength"],
                          {"test_name_is_a_valid_identifier_no_other_plugin_uses",
                           "test_space_builds_optuna_distributions",
                           "test_defaults_lie_inside_the_space",
                           "test_strength_names_a_numeric_parameter"}),
    "TestNegative": (["test_scores", "test_applicable_is_honest"],
                     {"test_scores_are_non_negative_finite_and_shaped_like_their_parameters",
                      "test_applicable_is_honest[cnn]", "test_applicable_is_honest[mlp]",
                      "test_applicable_is_honest[encoder]"}),
    "TestFlattened": (["test_scores"], {"test_scores_are_non_negative_finite_and_shaped_like_their_parameters"}),
    "TestUnseeded": (["test_same_seed", "test_scores"], {"test_same_seed_same_result"}),
    "TestInPlace": (["test_leaves", "test_scores"], {"test_leaves_its_inputs_unchanged"}),
    "TestUnpicklable": (["test_survives", "test_scores"], {"test_survives_the_trip_to_a_worker"}),
    "TestWantsBatchNorm": (["test_applicable_is_honest", "test_pruned_model"],
                           {"test_applicable_is_honest[mlp]", "test_applicable_is_honest[encoder]"}),
    "TestRecommendsWhatFails": (["test_defaults_for", "test_applicable_is_honest"],
                                {"test_defaults_for_each_model_lie_inside_the_space_and_run[mlp]",
                                 "test_defaults_for_each_model_lie_inside_the_space_and_run[encoder]"}),
    "TestNarrowsBadly": (["test_space_for"],
                         {"test_space_for_each_model_narrows_the_space_and_holds_its_defaults[cnn]",
                          "test_space_for_each_model_narrows_the_space_and_holds_its_defaults[mlp]",
                          "test_space_for_each_model_narrows_the_space_and_holds_its_defaults[encoder]"}),
    "TestKeepsMasks": (["test_pruned_model", "test_model_runs"],
                       {"test_pruned_model_keeps_its_output_shape_with_no_more_weights"}),
    "TestZeroes": (["test_training_after", "test_pruned_model"],
                   {"test_training_after_it_cannot_regrow_pruned_weights"}),
    "TestDeaf": (["test_stops", "test_trained_model"], {"test_stops_when_report_epoch_says_so"}),
    "TestTeacherInTrainMode": (["test_leaves", "test_same_seed"], {"test_leaves_its_inputs_unchanged"}),
    "TestOverclaiming": (["test_runtimes", "test_file_holds", "test_artifact"],
                         {"test_runtimes_are_known_and_others_are_refused",
                          "test_file_holds_at_least_min_bytes_per_weight"}),
}
#: the words a failure must use to name its fault
MESSAGES = {
    "TestInPlace::test_leaves_its_inputs_unchanged": "the scored model: 6 state_dict entries changed",
    "TestBadlyDeclared::test_strength_names_a_numeric_parameter": "strength 'q' names no declared parameter",
    "TestKeepsMasks::test_pruned_model_keeps_its_output_shape_with_no_more_weights": "left parametrizations",
    "TestZeroes::test_training_after_it_cannot_regrow_pruned_weights": "training regrew pruned weights",
    "TestWantsBatchNorm::test_applicable_is_honest[mlp]": "runs on the mlp model, but it raised RuntimeError",
    "TestRecommendsWhatFails::test_defaults_for_each_model_lie_inside_the_space_and_run[mlp]":
        "sets {'hard': True}, and with it pruner 'contract-recommends' raised RuntimeError",
    "TestNarrowsBadly::test_space_for_each_model_narrows_the_space_and_holds_its_defaults[cnn]":
        "pruner 'contract-narrows': space_for() widens 'ratio' from [0.1, 0.5] to [0.1, 0.9]",
    "TestNarrowsBadly::test_space_for_each_model_narrows_the_space_and_holds_its_defaults[mlp]":
        "defaults_for() sets 'ratio' = 0.3, which space_for() leaves out: {0.1}",
    "TestTeacherInTrainMode::test_leaves_its_inputs_unchanged": "ctx.teacher (the baseline)",
    "TestOverclaiming::test_file_holds_at_least_min_bytes_per_weight": "min_bytes_per_weight=8.0 promises",
    "TestUnpicklable::test_survives_the_trip_to_a_worker": "cannot be pickled for a Ray worker",
}

SHADOWED = textwrap.dedent('''
    import pytest

    from orchestrator_plugins.scorers.magnitude import MagnitudeScorer
    from orchestrator.testing import ScorerContract


    @pytest.fixture
    def params():
        return {"p": 2}


    class TestShadowed(ScorerContract):
        @pytest.fixture
        def strategy(self):
            return MagnitudeScorer()
''')


def test_each_broken_strategy_fails_exactly_the_tests_naming_its_fault(pytester):
    """One pytest session in a child process (the suites import onnxruntime, which cannot be imported
    again in this process once an in-process session has unloaded it)."""
    pytester.makepyfile(test_broken_strategies=BROKEN, test_shadowed_fixture=SHADOWED)
    selected = " or ".join(f"({cls} and ({' or '.join(tests)}))" for cls, (tests, _) in RUNS.items())
    report = pytester.path / "report.xml"
    pytester.runpytest_subprocess("-k", f"{selected} or (TestShadowed and test_describes)", "-p", "no:cacheprovider",
                                  f"--junitxml={report}")
    outcomes: dict[str, dict[str, str]] = {}
    messages: dict[str, str] = {}
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        cls = case.get("classname").rsplit(".", 1)[-1]
        failure = case.find("failure")
        if failure is None:
            failure = case.find("error")
        outcomes.setdefault(cls, {})[case.get("name")] = "passed" if failure is None else "failed"
        if failure is not None:
            messages[f"{cls}::{case.get('name')}"] = failure.get("message", "")
    for cls, (_, expected) in RUNS.items():
        assert cls in outcomes, f"{cls} ran no test"
        failed = {t for t, outcome in outcomes[cls].items() if outcome == "failed"}
        assert failed == expected, f"{cls}: failed {sorted(failed)}, expected {sorted(expected)}: {messages}"
    for test, words in MESSAGES.items():
        assert words in messages[test], f"{test}: {messages[test]!r} does not say {words!r}"
    # a fixture defined at module level, where the suite's own would shadow it, is named
    assert outcomes["TestShadowed"] == {"test_describes_its_params_in_words": "failed"}
    message = messages["TestShadowed::test_describes_its_params_in_words"]
    assert "the fixture 'params' is defined at module level" in message and "inside TestShadowed" in message


def test_orchestrator_never_imports_pytest_and_the_suites_name_it_when_missing():
    code = textwrap.dedent('''
        import sys
        import orchestrator, orchestrator.pipeline, orchestrator.executors.trial, orchestrator.cli.app
        from orchestrator.pluginmanager import get_host
        get_host()
        assert "pytest" not in sys.modules and "orchestrator.testing" not in sys.modules, "pytest was imported"
        sys.modules["pytest"] = None  # as if it were not installed
        try:
            import orchestrator.testing
        except ImportError as exc:
            assert "pip install pytest" in str(exc), exc
        else:
            raise AssertionError("orchestrator.testing imported without pytest")
    ''')
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_module_docstring_documents_every_test_and_fixture():
    """The docs quote the docstring: every test a suite runs and every fixture it reads is in it."""
    import orchestrator.testing as testing
    from orchestrator.testing._base import OVERRIDABLE

    doc = testing.__doc__
    for suite in (testing.ScorerContract, testing.PrunerContract, testing.DistillerContract,
                  testing.QuantizerContract):
        for name in dir(suite):
            if name.startswith("test_"):
                assert f"``{name}" in doc, f"{suite.__name__}.{name} is not documented"
    for name in OVERRIDABLE:
        assert f"\n``{name}``" in doc, f"the fixture '{name}' is not documented"
