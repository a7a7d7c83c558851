"""One night of a project at a time, across processes and Airflow tasks.

A night is many processes (an Airflow task per stage, or one ``cxkpi run``), so a lock held
by one process cannot cover it. The lease is a file beside the warehouse naming the night
that holds it: an Airflow night claims it in its first task and releases it in a teardown
task that runs whatever happened; ``cxkpi run`` claims it for its whole run. A second
night finds the lease taken: an Airflow night waits (its claim task is a sensor), a CLI run
fails at once naming the holder. A lease whose holder is gone (a CLI process that died, an
Airflow run that is no longer running) is taken over, saying so in the log.

Why not Airflow's ``max_active_runs=1``: backfills run under their own limit, and
``cxkpi run`` or a second deployment never asks Airflow.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cxkpi.config import Settings
from cxkpi.warehouse import LockBusy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Holder:
    run_id: str
    owner: str  # "airflow" (dag_id set) or "cli" (pid set)
    dag_id: str | None = None
    pid: int | None = None
    host: str = field(default_factory=socket.gethostname)
    since: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def describe(self) -> str:
        where = f"Airflow DAG {self.dag_id}" if self.owner == "airflow" else f"pid {self.pid}"
        return f"night {self.run_id} ({where} on {self.host}, since {self.since})"


def lease_path(settings: Settings) -> Path:
    return Path(f"{settings.warehouse_path}.night.lease")


def holder(settings: Settings) -> Holder | None:
    try:
        return Holder(**json.loads(lease_path(settings).read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError):
        log.warning("unreadable night lease %s: taken over", lease_path(settings))
        return None


@contextmanager
def _guarded(settings: Settings) -> Iterator[None]:
    """Claims and releases are read-then-write: serialise them (an flock, freed if the
    process dies)."""
    path = lease_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{path}.guard", "a") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(guard, fcntl.LOCK_UN)


def claim(settings: Settings, claimant: Holder, is_gone: Callable[[Holder], bool]) -> Holder | None:
    """Take the lease for ``claimant``: None when it holds it (again, for a retried claim),
    else the night holding it. ``is_gone(other)`` says whether another holder is over."""
    with _guarded(settings):
        current = holder(settings)
        if current is not None and current.run_id != claimant.run_id:
            if not is_gone(current):
                return current
            log.warning("taking over the night lease of %s, which is over", current.describe())
        path = lease_path(settings)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(asdict(claimant)), encoding="utf-8")
        os.replace(tmp, path)
        return None


def release(settings: Settings, run_id: str) -> bool:
    """Give the lease back if ``run_id`` holds it; whether it did."""
    with _guarded(settings):
        current = holder(settings)
        if current is None or current.run_id != run_id:
            return False
        lease_path(settings).unlink()
        return True


def cli_process_is_gone(other: Holder) -> bool:
    """A CLI holder is over when its process is (on this host); an Airflow holder is
    never judged from outside Airflow."""
    if other.owner != "cli" or other.host != socket.gethostname() or other.pid is None:
        return False
    try:
        os.kill(other.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@contextmanager
def cli_night(settings: Settings, run_id: str) -> Iterator[None]:
    """Hold the lease for a ``cxkpi run``; fail at once if another night holds it."""
    claimant = Holder(run_id=run_id, owner="cli", pid=os.getpid())
    busy = claim(settings, claimant, cli_process_is_gone)
    if busy is not None:
        raise LockBusy(
            f"another night of this project is running: {busy.describe()}. Wait for it to "
            f"finish (or, if it was stopped without its teardown, remove {lease_path(settings)})"
        )
    try:
        yield
    finally:
        release(settings, run_id)
