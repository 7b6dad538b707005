"""Contract test suites for strategy plugins: what the orchestrator relies on, checked by pytest.

A plugin's own test module subclasses the suite of its strategy's family and defines one fixture,
``strategy``, *inside the class*; every test of the suite then runs on it::

    # tests/test_my_scorer.py
    import pytest

    from orchestrator.testing import ScorerContract, default_params
    from my_package.scorers import SaliencyScorer


    class TestSaliencyScorer(ScorerContract):
        @pytest.fixture
        def strategy(self):
            return SaliencyScorer()

        @pytest.fixture              # optional: cheaper settings than the defaults
        def params(self, strategy):
            return default_params(strategy) | {"batches": 1}

``PrunerContract``, ``DistillerContract`` and ``QuantizerContract`` are used the same way. Fixtures
must be defined in the class: a module-level fixture of the same name would be shadowed by the
suite's own (the suite fails with a message saying so). The suites need ``pytest`` (this module
imports it; the rest of ``orchestrator`` never does) and run on a CPU in seconds: the models are
tiny and their data synthetic, trained once per process, nothing downloaded or cached on disk.

Fixtures
--------
``strategy`` (required)
    The strategy instance under test.
``params``
    The parameters every run uses: one value per declared parameter, as a trial gets them.
    Default: ``strategy.defaults``, with the middle of the range (or the first choice) for a
    parameter without a default. Override it to make runs cheap, keeping every parameter set:
    ``default_params(strategy) | {"epochs": 2}``.
``task``
    The :class:`orchestrator.Task` whose trained model the strategy runs on. Default:
    ``TinyTask("cnn")``, two convolution-BatchNorm-ReLU blocks and a linear head on 8x8 images,
    four classes. Override it with your own task (its baseline is trained with its
    ``baseline_training`` settings: keep them small) when your strategy needs another model.
``seed``
    The trial's seed (default 0). The global torch RNG is seeded with it before every run, as
    the orchestrator does before a trial.
``model``
    The model the strategy receives. Default: a fresh copy of the task's trained baseline; for
    distillers, that copy with half its channels removed by the built-in ``channel`` pruner (a
    student narrower than its teacher, as after a prune stage).
``zoo_task``
    The tasks ``test_applicable_is_honest`` asks the strategy about, one test each. Default:
    ``TinyTask`` of each shape in ``SHAPES``: ``cnn``, ``mlp`` (linear layers only) and
    ``encoder`` (embeddings, ``nn.TransformerEncoder``, integer inputs).
``prunes`` (pruners)
    Whether the pruner removes at least one weight with ``params`` (default True; the ``none``
    pruner sets False).
``tolerance`` (quantizers)
    How far the artifact's outputs may lie from the float model's, as a fraction of the largest
    float output (default 0.1; fp16 passes 0.01).
``size_task`` (quantizers)
    The task whose model ``test_file_holds_at_least_min_bytes_per_weight`` runs on: one whose
    weights, not the graph, dominate the file. Default: ``TinyTask("wide")``, an MLP with 70k
    weights.
``exact_bytes`` (quantizers)
    Whether the same seed must write the very same file (default True); False compares the two
    files' outputs instead.

What every suite asserts
------------------------
The tests below that run the strategy on ``model`` first ask ``applicable(model, ctx)``; a
strategy that declines the model fails them with its reason (choose a ``task`` it applies to).

``test_is_a_strategy_of_its_family``
    The instance subclasses the family's base class of :mod:`orchestrator.strategies`.
``test_name_is_a_valid_identifier_no_other_plugin_uses``
    ``name`` is lowercase words joined by ``-`` or ``_`` (it appears in YAML, on the command line,
    in Optuna parameter names ``<stage>.<strategy>.<param>`` and in file names), and no installed
    plugin registers another strategy of the family under it (a scorer may not be called ``none``).
``test_space_builds_optuna_distributions``
    Every parameter name is an identifier and every ``Float``/``Int``/``Choice`` builds an Optuna
    distribution without a warning (choices are None, bool, int, float or str).
``test_defaults_lie_inside_the_space``
    Every ``defaults`` entry names a declared parameter and lies inside its range or choices.
``test_defaults_for_each_model_lie_inside_the_space_and_run[zoo_task]``
    On each zoo model the strategy applies to, what ``defaults_for(model)`` sets apart from
    ``defaults`` names declared parameters with values inside their ranges or choices, runs on
    that model (on top of ``params``) and meets the family's contract below.
``test_space_for_each_model_narrows_the_space_and_holds_its_defaults[zoo_task]``
    On each zoo model the strategy applies to, ``space_for(model, space)`` keeps every declared
    parameter, widens none of them, leaves the model unchanged, and still holds the values
    ``defaults_for(model)`` sets.
``test_strength_names_a_numeric_parameter``
    A declared ``strength`` names a declared parameter with numeric values (a range, or a list of
    numbers), along which the enqueued chain is tried lighter and stronger.
``test_params_lie_inside_the_space``
    The ``params`` fixture sets every declared parameter to a value the search could choose.
``test_describes_its_params_in_words``
    ``describe(params)`` returns a non-empty string.
``test_survives_the_trip_to_a_worker``
    The strategy pickles with cloudpickle (the catalogue reaches Ray workers through Ray's object
    store) and comes back with the same name, space, defaults and description.
``test_applicable_is_honest[zoo_task]``
    ``applicable(model, ctx)`` returns None or a non-empty reason; when None, the strategy runs
    on that model and its output meets the family's contract below (an ``InapplicableError`` with a
    reason, raised for a parameter setting, is accepted: the trial is skipped with it).
``test_same_seed_same_result``
    Two runs with the same seed give the same scores / pruned weights / trained weights and
    curve / float model and file bytes.
``test_model_runs_and_exports_to_onnx_after_it``
    The model after the strategy gives outputs of the baseline's shape, exports with
    ``orchestrator.export.export_onnx``, and ONNX Runtime runs the file to the same outputs.
``test_leaves_its_inputs_unchanged``
    The teacher (``ctx.teacher``, the baseline every trial shares: weights, buffers,
    ``requires_grad``, ``.grad``, hooks), ``ctx.data`` and ``ctx.rewind_state`` are unchanged
    afterwards; so is the model for the families whose method must not change it (a scorer's
    ``score``, a quantizer's ``quantize``). Pruners and distillers may change the model they are
    given in place: it is the trial's own copy.

What each family's suite adds
-----------------------------
``ScorerContract``
    ``test_scores_are_non_negative_finite_and_shaped_like_their_parameters``: ``score`` returns a
    non-empty mapping from names of ``model.named_parameters()`` to detached, floating,
    finite, non-negative tensors of each parameter's shape.
``PrunerContract``
    Runs ``prune`` (with |w| scores when ``needs_scores``, and ``ctx.rescore`` set), then
    ``finalize``. ``test_pruned_model_keeps_its_output_shape_with_no_more_weights``: the result is
    an ``nn.Module`` giving finite outputs of the same shape, with no more parameters and no more
    non-zero parameters (fewer when ``prunes``), no parametrization or hook left.
    ``test_training_after_it_cannot_regrow_pruned_weights``: one epoch of training between
    ``prune`` and ``finalize`` adds no non-zero parameter (constraints are checked before training).
``DistillerContract``
    ``test_trained_model_keeps_its_output_shape_and_its_curve_is_reported``: ``train`` returns an
    ``nn.Module`` with finite outputs of the same shape and reports epochs 1, 2, ... with finite
    values through ``ctx.report_epoch``. ``test_stops_when_report_epoch_says_so``: when
    ``ctx.report_epoch`` returns True, no further epoch is reported.
``QuantizerContract``
    Runs ``prepare_training``, one epoch of training when the quantizer overrides it,
    ``end_training`` (which must restore the model's state_dict keys), the core's fp32 export
    for the runtime, then ``quantize``, once per runtime in ``runtimes``.
    ``test_runtimes_are_known_and_others_are_refused``: ``runtimes`` names known runtimes and
    ``applicable`` refuses the others with a reason.
    ``test_artifact_loads_runs_and_stays_close_to_the_float_model``: the file keeps the fp32
    file's suffix, its runtime loads and runs it, and its outputs are within ``tolerance``.
    ``test_file_holds_at_least_min_bytes_per_weight``: the file has at least
    ``min_bytes_per_weight`` bytes per weight of the layers the model runs (skipped when None).
    ``test_torch_equivalent_stays_close_to_the_float_model``: when ``torch_equivalent`` gives a
    module (what ``orchestrator export --format torchscript|pt`` ships), it leaves the model alone
    and its outputs are within ``tolerance`` (skipped when None).

A suite's tests can be skipped or extended like any pytest class: override a test method in the
subclass (with a comment saying why) or add your own tests beside the contract's.
"""

try:
    import pytest  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("orchestrator.testing needs pytest: pip install pytest") from exc

from orchestrator.testing._base import NAME_PATTERN, Bench, Outcome, StrategyContract, default_params
from orchestrator.testing._distiller import DistillerContract
from orchestrator.testing._pruner import PrunerContract
from orchestrator.testing._quantizer import QuantizerContract
from orchestrator.testing._scorer import ScorerContract
from orchestrator.testing._tasks import SHAPES, TinyTask

__all__ = [
    "ScorerContract",
    "PrunerContract",
    "DistillerContract",
    "QuantizerContract",
    "StrategyContract",
    "TinyTask",
    "SHAPES",
    "NAME_PATTERN",
    "Bench",
    "Outcome",
    "default_params",
]
