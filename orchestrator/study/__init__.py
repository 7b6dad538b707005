"""The Optuna study: samplers, the conditional recipe space, the Pareto front and the ask/tell driver."""
