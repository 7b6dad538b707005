"""The plugin host: built-ins and third-party plugins through one path, clashes and broken contracts
reported as a PluginError naming the plugin(s) at fault."""

from __future__ import annotations

import types

import pytest

from orchestrator import hookimpl
from orchestrator.errors import PluginError, UsageError
from orchestrator.pluginmanager import BLOCK_ENV, PluginHost, builtin_name, get_host
from orchestrator.results import TrialResult
from orchestrator.strategies import Scorer
from orchestrator_plugins import BUILTIN_PLUGINS


@pytest.fixture(autouse=True)
def _no_blocked_plugins(monkeypatch):
    monkeypatch.delenv(BLOCK_ENV, raising=False)


class NormScorer(Scorer):
    name = "l2norm"

    def score(self, model, ctx, params):
        return {n: p.detach().pow(2) for n, p in model.named_parameters()}


class Recorder:
    """A third-party plugin: one scorer plus every lifecycle hook, recording its calls."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    @hookimpl
    def orchestrator_register_scorers(self, register):
        register(NormScorer)  # a class is instantiated by the host

    @hookimpl
    def orchestrator_run_start(self, config, run_dir):
        self.calls.append(("run_start", config, run_dir))

    @hookimpl
    def orchestrator_trial_start(self, number, recipe):
        self.calls.append(("trial_start", number, recipe))

    @hookimpl
    def orchestrator_trial_end(self, result):
        self.calls.append(("trial_end", result))

    @hookimpl
    def orchestrator_run_end(self, config, run_dir, pareto):
        self.calls.append(("run_end", config, run_dir, pareto))


def _scorer_plugin(strategy) -> types.SimpleNamespace:
    """A module-like plugin whose one hook registers ``strategy`` as a scorer."""

    @hookimpl
    def orchestrator_register_scorers(register):
        register(strategy)

    return types.SimpleNamespace(orchestrator_register_scorers=orchestrator_register_scorers)


# --- built-ins -----------------------------------------------------------------------------------

def test_builtin_plugins_are_registered_under_builtin_names(host):
    names = {info.name for info in host.plugins()}
    expected = {"builtin.scorers.magnitude", "builtin.scorers.random", "builtin.scorers.taylor",
                "builtin.scorers.fpgm", "builtin.scorers.bn_scale", "builtin.pruners.none",
                "builtin.pruners.channel", "builtin.pruners.unstructured", "builtin.pruners.iterative",
                "builtin.pruners.lottery", "builtin.distillers.finetune", "builtin.distillers.kd",
                "builtin.distillers.feature", "builtin.quantizers.none", "builtin.quantizers.static_int8",
                "builtin.quantizers.dynamic_int8", "builtin.quantizers.qat", "builtin.quantizers.fp16",
                "builtin.tasks.mnist1d", "builtin.tasks.digits", "builtin.tasks.tiny_text"}
    assert expected <= names
    assert {builtin_name(m) for m in BUILTIN_PLUGINS} == expected


def test_builtin_name_strips_the_package():
    assert builtin_name("orchestrator_plugins.pruners.channel") == "builtin.pruners.channel"


def test_builtin_plugins_contribute_the_builtin_strategies_and_tasks(host):
    cat = host.catalogue
    assert set(cat.family("scorer")) >= {"magnitude"}
    assert set(cat.family("pruner")) >= {"none", "channel"}
    assert set(cat.family("distiller")) >= {"none", "kd"}
    assert set(cat.family("quantizer")) >= {"none", "static-int8"}
    assert set(cat.tasks) >= {"mnist1d", "digits"}
    assert isinstance(cat.family("scorer")["magnitude"], Scorer)
    assert cat.family("pruner")["none"].needs_scores is False
    assert cat.family("pruner")["channel"].needs_scores is True


def test_each_builtin_strategy_is_owned_by_its_plugin(host):
    owners = host.catalogue.owners
    assert owners[("scorer", "magnitude")] == "builtin.scorers.magnitude"
    assert owners[("pruner", "channel")] == "builtin.pruners.channel"
    assert owners[("distiller", "none")] == "builtin.distillers.finetune"
    assert owners[("quantizer", "static-int8")] == "builtin.quantizers.static_int8"
    assert owners[("task", "digits")] == "builtin.tasks.digits"


def test_plugins_describes_builtins_with_distribution_hooks_and_strategies(host):
    infos = {info.name: info for info in host.plugins()}
    channel = infos["builtin.pruners.channel"]
    assert channel.distribution == "compression-orchestrator"
    assert channel.version
    assert channel.hooks == ["orchestrator_register_pruners"]
    assert channel.strategies == {"pruner": ["channel"]}
    assert channel.tasks == []
    digits = infos["builtin.tasks.digits"]
    assert digits.tasks == ["digits"] and digits.strategies == {}


def test_plugins_are_listed_sorted_by_name(host):
    names = [info.name for info in host.plugins()]
    assert names == sorted(names)


def test_get_host_is_cached():
    assert get_host() is get_host()


# --- clashes and broken contracts ----------------------------------------------------------------

def test_a_scorer_name_that_already_exists_names_both_plugins():
    with pytest.raises(PluginError) as info:
        PluginHost(extra_plugins=[("acme.dup", _scorer_plugin(get_host().catalogue.family("scorer")["magnitude"]))])
    assert str(info.value) == ("scorer 'magnitude' is registered by both plugin 'builtin.scorers.magnitude' "
                               "and plugin 'acme.dup'")


def test_a_clash_between_two_third_party_plugins_names_both_and_is_a_usage_error():
    with pytest.raises(PluginError) as info:
        PluginHost(extra_plugins=[("acme.one", _scorer_plugin(NormScorer())),
                                  ("acme.two", _scorer_plugin(NormScorer()))])
    assert "scorer 'l2norm'" in str(info.value)
    assert "'acme.one'" in str(info.value) and "'acme.two'" in str(info.value)
    assert isinstance(info.value, UsageError) and info.value.exit_code == 2


def test_a_task_name_that_already_exists_names_both_plugins():
    class TaskClash:
        @hookimpl
        def orchestrator_register_tasks(self, register):
            register("digits", lambda **kw: None)

    with pytest.raises(PluginError) as info:
        PluginHost(extra_plugins=[("acme.tasks", TaskClash())])
    assert str(info.value) == ("task 'digits' is registered by both plugin 'builtin.tasks.digits' "
                               "and plugin 'acme.tasks'")


def test_a_hook_that_does_not_exist_names_the_plugin():
    class Widgets:
        @hookimpl
        def orchestrator_register_widgets(self, register):
            register(object())

    with pytest.raises(PluginError) as info:
        PluginHost(extra_plugins=[("acme.widgets", Widgets())])
    message = str(info.value)
    assert "acme.widgets" in message
    assert "orchestrator_register_widgets" in message
    assert "\n" not in message


def test_a_hookimpl_asking_for_an_argument_the_hook_lacks_names_the_plugin():
    class Greedy:
        @hookimpl
        def orchestrator_trial_end(self, result, study):
            pass

    with pytest.raises(PluginError) as info:
        PluginHost(extra_plugins=[("acme.greedy", Greedy())])
    message = str(info.value)
    assert message.startswith("plugin 'acme.greedy': ")
    assert "orchestrator_trial_end" in message
    assert "study" in message


def test_a_hookimpl_argument_mismatch_is_reported_on_one_line():
    class Greedy:
        @hookimpl
        def orchestrator_trial_end(self, result, study):
            pass

    with pytest.raises(PluginError) as info:
        PluginHost(extra_plugins=[("acme.greedy", Greedy())])
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("obj", [object(), "magnitude", dict])
def test_registering_something_that_is_not_a_scorer_is_a_plugin_error(obj):
    with pytest.raises(PluginError) as info:
        PluginHost(extra_plugins=[("acme.bad", _scorer_plugin(obj))])
    message = str(info.value)
    assert message.startswith("plugin 'acme.bad' registered ")
    assert message.endswith("as a scorer, but it is not a Scorer")


def test_registering_a_pruner_as_a_scorer_is_a_plugin_error():
    pruner = get_host().catalogue.family("pruner")["channel"]
    with pytest.raises(PluginError, match="plugin 'acme.bad' registered .* as a scorer, but it is not a Scorer"):
        PluginHost(extra_plugins=[("acme.bad", _scorer_plugin(pruner))])


def test_a_hook_that_raises_names_the_plugin_and_the_hook():
    class Broken:
        @hookimpl
        def orchestrator_register_pruners(self, register):
            raise RuntimeError("no GPU here")

    with pytest.raises(PluginError) as info:
        PluginHost(extra_plugins=[("acme.broken", Broken())])
    assert str(info.value) == ("plugin 'acme.broken' failed in orchestrator_register_pruners: "
                               "RuntimeError: no GPU here")


def test_a_plugin_name_used_twice_is_a_plugin_error():
    with pytest.raises(PluginError, match="plugin 'builtin.scorers.magnitude' is registered twice"):
        PluginHost(extra_plugins=[("builtin.scorers.magnitude", Recorder())])


# --- blocking ------------------------------------------------------------------------------------

def test_a_blocked_builtin_stays_out_of_the_catalogue(monkeypatch):
    monkeypatch.setenv(BLOCK_ENV, "builtin.pruners.channel")
    host = PluginHost()
    assert "channel" not in host.catalogue.family("pruner")
    assert {"none", "unstructured"} <= set(host.catalogue.family("pruner"))
    assert "builtin.pruners.channel" not in {info.name for info in host.plugins()}
    assert "magnitude" in host.catalogue.family("scorer")


def test_several_plugins_can_be_blocked_including_extra_ones(monkeypatch):
    monkeypatch.delenv(BLOCK_ENV, raising=False)
    everything = set(PluginHost().catalogue.family("quantizer"))
    monkeypatch.setenv(BLOCK_ENV, " builtin.quantizers.static_int8 , acme.dup,")
    host = PluginHost(extra_plugins=[("acme.dup", _scorer_plugin(NormScorer()))])
    assert {"none", "static-int8", "dynamic-int8", "qat", "fp16"} <= everything
    # only the blocked plugin's quantizer is gone; the other built-in quantizers stay
    assert set(host.catalogue.family("quantizer")) == everything - {"static-int8"}
    assert "builtin.quantizers.static_int8" not in {info.name for info in host.plugins()}
    assert "acme.dup" not in {info.name for info in host.plugins()}
    assert "l2norm" not in host.catalogue.family("scorer")


def test_blocking_the_clashing_plugin_lets_the_host_start(monkeypatch):
    monkeypatch.setenv(BLOCK_ENV, "builtin.scorers.magnitude")
    host = PluginHost(extra_plugins=[("acme.mag", _scorer_plugin(get_host().catalogue.family("scorer")["magnitude"]))])
    assert host.catalogue.owners[("scorer", "magnitude")] == "acme.mag"


# --- third-party plugins -------------------------------------------------------------------------

def test_a_third_party_scorer_shows_up_with_its_hooks_and_strategies():
    plugin = Recorder()
    host = PluginHost(extra_plugins=[("acme.norm", plugin)])
    scorer = host.catalogue.family("scorer")["l2norm"]
    assert isinstance(scorer, NormScorer)
    assert host.catalogue.owners[("scorer", "l2norm")] == "acme.norm"
    info = {i.name: i for i in host.plugins()}["acme.norm"]
    assert info.distribution is None and info.version is None
    assert info.hooks == ["orchestrator_register_scorers", "orchestrator_run_end", "orchestrator_run_start",
                          "orchestrator_trial_end", "orchestrator_trial_start"]
    assert info.strategies == {"scorer": ["l2norm"]}
    assert info.tasks == []
    assert "magnitude" in host.catalogue.family("scorer")  # the built-ins are still there


def test_a_module_like_plugin_contributes_a_scorer():
    host = PluginHost(extra_plugins=[("acme.module", _scorer_plugin(NormScorer()))])
    assert host.catalogue.owners[("scorer", "l2norm")] == "acme.module"
    info = {i.name: i for i in host.plugins()}["acme.module"]
    assert info.hooks == ["orchestrator_register_scorers"]


def test_a_third_party_scorer_can_be_used_in_a_search_space(tmp_path):
    from orchestrator.spaces import resolve_space

    host = PluginHost(extra_plugins=[("acme.norm", Recorder())])
    path = tmp_path / "norm.yaml"
    path.write_text("stages:\n  score: [magnitude, l2norm]\n  prune: [channel]\n")
    space = resolve_space(str(path), host.catalogue)
    assert space.strategies("score") == ["magnitude", "l2norm"]


def test_lifecycle_hooks_reach_a_plugin_that_implements_them(tmp_path):
    plugin = Recorder()
    host = PluginHost(extra_plugins=[("acme.rec", plugin)])
    assert plugin.calls == []
    config = object()
    recipe = {"prune": {"strategy": "channel", "params": {"ratio": 0.5}}}
    result = TrialResult(number=4, state="COMPLETE", recipe=recipe, metrics={"accuracy": 0.9})
    host.run_start(config, tmp_path)
    host.trial_start(4, recipe)
    host.trial_end(result)
    host.run_end(config, tmp_path, [result])
    assert plugin.calls == [("run_start", config, tmp_path), ("trial_start", 4, recipe), ("trial_end", result),
                            ("run_end", config, tmp_path, [result])]


def test_a_lifecycle_hookimpl_may_take_a_subset_of_the_arguments(tmp_path):
    seen = []

    class Partial:
        @hookimpl
        def orchestrator_run_end(self, pareto):
            seen.append(pareto)

    host = PluginHost(extra_plugins=[("acme.partial", Partial())])
    host.run_end(object(), tmp_path, ["front"])
    assert seen == [["front"]]



class NeedsTheFuture:
    """A plugin made for an orchestrator that does not exist yet."""

    ORCHESTRATOR_REQUIRES = ">=99"

    @hookimpl
    def orchestrator_register_scorers(self, register):
        register(NormScorer())


def test_a_plugin_made_for_another_orchestrator_version_is_refused_in_one_line():
    from orchestrator._version import __version__

    with pytest.raises(PluginError) as info:
        PluginHost(extra_plugins=[("futuristic", NeedsTheFuture())])
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("plugin 'futuristic' requires compression-orchestrator>=99 (ORCHESTRATOR_REQUIRES)")
    assert f"this is {__version__}" in message and f"{BLOCK_ENV}=futuristic" in message


def test_a_plugin_whose_requirement_is_met_loads(monkeypatch):
    monkeypatch.setattr(NeedsTheFuture, "ORCHESTRATOR_REQUIRES", ">=0.1,<99")
    host = PluginHost(extra_plugins=[("futuristic", NeedsTheFuture())])
    assert "l2norm" in host.catalogue.family("scorer")


def test_a_blocked_plugin_made_for_another_version_is_not_checked(monkeypatch):
    monkeypatch.setenv(BLOCK_ENV, "futuristic")
    host = PluginHost(extra_plugins=[("futuristic", NeedsTheFuture())])
    assert "l2norm" not in host.catalogue.family("scorer")


@pytest.mark.parametrize("requires, refused", [
    (["torch>=2", "compression-orchestrator>=99"], True),
    (["Compression_Orchestrator>=0.1"], False),
    (["compression-orchestrator>=99; extra == 'dev'"], False),  # only for the plugin's own dev extra
    (None, False),
])
def test_the_distributions_own_requirement_on_the_orchestrator_is_checked(requires, refused):
    from orchestrator.pluginmanager import check_orchestrator_requirement

    def check():
        check_orchestrator_requirement("ext", object(), ("orchestrator-ext", "1.2"), requires)

    if not refused:
        check()
        return
    with pytest.raises(PluginError, match=r"^plugin 'ext' \(orchestrator-ext 1\.2\) requires "
                                          r"compression-orchestrator>=99 \(its package's requirements\)"):
        check()


def test_a_malformed_version_requirement_is_named():
    from orchestrator.pluginmanager import check_orchestrator_requirement

    plugin = types.SimpleNamespace(ORCHESTRATOR_REQUIRES="version two please")
    with pytest.raises(PluginError, match="plugin 'odd': ORCHESTRATOR_REQUIRES = 'version two please' is not a "
                                          "version specifier"):
        check_orchestrator_requirement("odd", plugin, (None, None), None)


def _installed(tmp_path, monkeypatch, name, module_source, requires=()):
    """A plugin distribution as pip would leave it: a module and a dist-info with its entry point."""
    dist = tmp_path / f"{name.replace('-', '_')}-1.0.dist-info"
    dist.mkdir()
    lines = [f"Metadata-Version: 2.1", f"Name: {name}", "Version: 1.0"] + [f"Requires-Dist: {r}" for r in requires]
    (dist / "METADATA").write_text("\n".join(lines) + "\n")
    module = name.replace("-", "_") + "_plugin"
    (dist / "entry_points.txt").write_text(f"[orchestrator]\n{name} = {module}\n")
    (tmp_path / f"{module}.py").write_text(module_source)
    monkeypatch.syspath_prepend(str(tmp_path))


def test_a_plugin_that_fails_to_import_names_its_distribution_and_the_error(tmp_path, monkeypatch):
    _installed(tmp_path, monkeypatch, "broken-ext", "import a_module_nobody_installed\n")
    with pytest.raises(PluginError) as info:
        PluginHost()
    message = str(info.value)
    assert message == ("plugin 'broken-ext' (broken-ext) failed to import: ModuleNotFoundError: No module named "
                       f"'a_module_nobody_installed'; set {BLOCK_ENV}=broken-ext to run without it")
    monkeypatch.setenv(BLOCK_ENV, "broken-ext")
    assert "magnitude" in PluginHost().catalogue.family("scorer")  # the run goes on without it


def test_an_installed_plugin_whose_package_needs_another_orchestrator_is_refused(tmp_path, monkeypatch):
    source = ("from orchestrator import hookimpl\n\n@hookimpl\ndef orchestrator_register_scorers(register):\n"
              "    pass\n")
    _installed(tmp_path, monkeypatch, "old-ext", source, requires=["compression-orchestrator<0.1"])
    with pytest.raises(PluginError, match=r"^plugin 'old-ext' \(old-ext 1\.0\) requires compression-orchestrator<0\.1 "
                                          r"\(its package's requirements\)"):
        PluginHost()
