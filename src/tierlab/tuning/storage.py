"""Where a study lives: ``tuning.storage`` as an Optuna storage object.

* ``sqlite:///path/to/file.db`` (the default, under the project's ``outputs/optuna``): one file
  holds every study by name, so rerunning a command resumes its study;
* any other SQLAlchemy URL, e.g. ``postgresql+psycopg2://user@host:5432/optuna`` (SQLAlchemy 2.1
  maps a bare ``postgresql://`` to psycopg 3; keep the password out of the URL, e.g. in
  ``~/.pgpass`` or ``PGPASSWORD``, because the config is logged to MLflow);
* ``journal:///abs/path/file.log``: Optuna's journal storage (``JournalFileBackend``), an
  append-only file that several worker processes on one machine or a shared file system can
  write at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import optuna
from optuna.storages.journal import JournalFileBackend, JournalStorage

from tierlab.locking import file_lock
from tierlab.tracking import mask  # also for the callers of this module

JOURNAL_PREFIX = "journal://"
#: Seconds SQLite waits for a lock held by another worker before failing.
SQLITE_TIMEOUT_S = 60


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """The Optuna storage for ``tuning.storage`` (folders of file-based stores are created)."""
    url = str(url)
    if url.startswith(JOURNAL_PREFIX):
        path = Path(url[len(JOURNAL_PREFIX) :])
        if not path.is_absolute():
            raise ValueError(
                f"tuning.storage={url!r}: a journal storage needs an absolute path, "
                "journal:///abs/path/file.log (three slashes)"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    if "://" not in url:
        raise ValueError(
            f"tuning.storage={url!r} is not a storage URL; use sqlite:///path/file.db, an RDB "
            "URL such as postgresql+psycopg2://user@host/db, or journal:///abs/path/file.log"
        )
    engine_kwargs = {}
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine_kwargs = {"connect_args": {"timeout": SQLITE_TIMEOUT_S}}
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
    except ImportError as exc:  # Optuna wraps the driver's ModuleNotFoundError
        missing = exc if isinstance(exc, ModuleNotFoundError) else exc.__cause__
        name = getattr(missing, "name", None) or "?"
        raise ModuleNotFoundError(
            f"tuning.storage={mask(url)} needs the database driver {name!r}, which is not "
            "installed (PostgreSQL: pip install psycopg2-binary for postgresql+psycopg2://, or "
            "psycopg[binary] for postgresql://)",
            name=name,
        ) from exc


@contextmanager
def claim_lock(url: str) -> Iterator[None]:
    """Serialise claiming a WAITING trial among the processes of one machine, where the storage
    itself does not: SQLite has no row locks, so two workers could both read a trial as WAITING
    and both mark it RUNNING.  PostgreSQL/MySQL lock the row (``SELECT ... FOR UPDATE``) and the
    journal storage orders claims by replay, so they need no extra lock."""
    url = str(url)
    path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else ""
    if not path or path == ":memory:":
        yield
        return
    with file_lock(f"{path}.claim.lock"):  # SQLite files are shared by one machine's processes
        yield
