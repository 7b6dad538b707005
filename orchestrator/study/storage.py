"""Where the Optuna study lives: the journal file ``study.log`` in the run directory by default,
or any SQLAlchemy URL (PostgreSQL for a long-lived shared study)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import optuna

from orchestrator.errors import UsageError

if TYPE_CHECKING:
    from orchestrator.config import ExecutionConfig
    from orchestrator.rundir import RunDir


def make_storage(execution: "ExecutionConfig", run_dir: "RunDir") -> optuna.storages.BaseStorage:
    if execution.storage is None:
        backend = optuna.storages.journal.JournalFileBackend(str(run_dir.study_log))
        return optuna.storages.JournalStorage(backend)
    url = execution.storage
    try:
        return optuna.storages.RDBStorage(url)
    except ModuleNotFoundError as exc:
        raise UsageError(f"execution.storage: the database driver '{exc.name}' is not installed "
                         "(for PostgreSQL: pip install 'compression-orchestrator[postgres]')") from None
    except Exception as exc:  # sqlalchemy's errors for a bad URL or an unreachable server
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"execution.storage: cannot open {_redact(url)}: {first}") from None


def study_name(execution: "ExecutionConfig", run_dir: "RunDir") -> str:
    """The journal file holds one study; a shared database names it after the run directory."""
    if execution.study_name:
        return execution.study_name
    return "orchestrator" if execution.storage is None else Path(run_dir.root).resolve().name


def claim(study: optuna.Study, run_dir: "RunDir") -> None:
    """A study belongs to one run directory: refuse one that another run directory started."""
    mine = str(Path(run_dir.root).resolve())
    owner = study.user_attrs.get("run_dir")
    if owner is None:
        study.set_user_attr("run_dir", mine)
    elif owner != mine:
        raise UsageError(f"study '{study.study_name}' in the storage belongs to the run in {owner}; "
                         "set execution.study_name to start another")


def _redact(url: str) -> str:
    """The URL without its password."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "the storage URL"
