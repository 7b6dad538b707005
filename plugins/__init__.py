"""The built-in strategies and tasks, registered through the same hookimpl path as third parties."""

BUILTIN_PLUGINS: tuple[str, ...] = (
    "orchestrator_plugins.scorers.magnitude",
    "orchestrator_plugins.scorers.random",
    "orchestrator_plugins.scorers.taylor",
    "orchestrator_plugins.scorers.fpgm",
    "orchestrator_plugins.scorers.bn_scale",
    "orchestrator_plugins.pruners.none",
    "orchestrator_plugins.pruners.channel",
    "orchestrator_plugins.pruners.unstructured",
    "orchestrator_plugins.pruners.iterative",
    "orchestrator_plugins.pruners.lottery",
    "orchestrator_plugins.distillers.finetune",
    "orchestrator_plugins.distillers.kd",
    "orchestrator_plugins.distillers.feature",
    "orchestrator_plugins.quantizers.none",
    "orchestrator_plugins.quantizers.static_int8",
    "orchestrator_plugins.tasks.mnist1d",
    "orchestrator_plugins.tasks.digits",
    "orchestrator_plugins.tasks.tiny_text",
)
