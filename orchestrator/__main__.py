"""``python -m orchestrator``: the ``orchestrator`` command, for an interpreter whose scripts are not
on PATH."""

from orchestrator.cli.app import run

if __name__ == "__main__":
    run()
