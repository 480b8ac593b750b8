"""The run's optuna study: created whole (or loaded to resume) in the output folder, or in the
storage the user named, and told of each finished candidate in one transaction."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from edgefit._io import WriteError, write_error
from edgefit._lazy import lazy_import
from edgefit.errors import EdgefitError
from edgefit.records import DoneCandidate, FailedCandidate
from edgefit.search._config import OptimizeConfig, run_folder

if TYPE_CHECKING:
    import optuna
else:  # loaded when a run opens its study, not by importing search
    optuna = lazy_import("optuna")


def _redacted(url: str) -> str:
    """A storage URL with its password replaced, for error lines.

    >>> _redacted("postgresql://edgefit:secret@db/edgefit")
    'postgresql://edgefit:***@db/edgefit'
    """
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def _study(config: OptimizeConfig, keys: list[str]):
    """The run's optuna study (created, or loaded to resume) and the distribution of its one
    parameter.

    The default SQLite file is created whole under a temporary name and renamed into place, so a
    run killed while creating it leaves no half-initialized database behind.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.NSGAIISampler(seed=config.seed)
    default_db = (run_folder(config) / "study.db").resolve()
    storage = config.storage or f"sqlite:///{default_db}"
    try:
        if config.storage is None and not default_db.is_file():
            _create_sqlite_study(default_db, sampler)
        study = optuna.create_study(
            study_name="edgefit",
            storage=storage,
            load_if_exists=True,
            directions=["maximize", "minimize"],
            sampler=sampler,
        )
    except ImportError as exc:  # the URL's database driver is not installed
        raise EdgefitError(
            f"optuna storage '{_redacted(storage)}' needs a database driver that is not installed",
            where="--storage",
            fix="install that database's Python driver; PostgreSQL: pip install "
            '"psycopg[binary]" '
            "(or psycopg2-binary with a postgresql+psycopg2:// URL)",
        ) from exc
    except EdgefitError:
        raise
    except Exception as exc:  # noqa: BLE001 - sqlalchemy's errors: unreachable server, bad URL, no permission
        raise EdgefitError(
            f"cannot open optuna storage '{_redacted(storage)}': {_first_line(exc)}",
            where="--storage" if config.storage else str(default_db),
            fix="check the URL, that the database server runs, and the user's rights"
            if config.storage
            else "delete the damaged study.db to start the search afresh, or pass another --out",
        ) from exc
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(
            t.number, state=optuna.trial.TrialState.FAIL
        )  # left running by a killed run (older edgefit)
    dist = {"candidate": optuna.distributions.CategoricalDistribution(sorted(set(keys)))}
    return study, dist


def _create_sqlite_study(db: Path, sampler) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{db.name}.{os.getpid()}.", suffix=".tmp", dir=db.parent)
    os.close(fd)
    try:
        storage = optuna.storages.RDBStorage(f"sqlite:///{tmp}")
        optuna.create_study(
            study_name="edgefit",
            storage=storage,
            directions=["maximize", "minimize"],
            sampler=sampler,
        )
        storage.remove_session()
        storage.engine.dispose()
        os.replace(tmp, db)
    except OSError as exc:
        err = write_error(exc, db)
        if err is None:
            raise
        raise err from exc
    finally:
        Path(tmp).unlink(missing_ok=True)


def _first_line(exc: BaseException) -> str:
    cause = (
        exc.__cause__ or exc.__context__ or exc
    )  # optuna wraps sqlalchemy's error: its cause says what
    text = str(cause).strip().splitlines()[0][:200] if str(cause).strip() else ""
    return f"{type(cause).__name__}: {text}"


def _tell(study, dist, key: str, record: DoneCandidate | FailedCandidate) -> None:
    """Add the finished candidate to the study as one finished trial (a single database
    transaction: a kill leaves no trial waiting or running)."""
    done = isinstance(record, DoneCandidate)

    def trial(params: bool):
        return optuna.trial.create_trial(
            params={"candidate": key} if params else {},
            distributions=dist if params else {},
            user_attrs={"candidate": key},
            values=[record.accuracy.value, record.latency.p50_s]
            if isinstance(record, DoneCandidate)
            else None,
            state=optuna.trial.TrialState.COMPLETE if done else optuna.trial.TrialState.FAIL,
        )

    try:
        try:
            study.add_trial(trial(params=True))
        except (
            ValueError
        ):  # a study begun with other candidate choices (an older edgefit): keep the key only
            study.add_trial(trial(params=False))
    except Exception as exc:  # noqa: BLE001 - a full disk or a read-only database, under optuna's wrapper
        raise WriteError(
            f"cannot record candidate {key} in the optuna study: {_first_line(exc)}",
            where="study",
            fix="free space or make the output folder writable, then rerun "
            "(finished candidates are reused)",
        ) from exc
