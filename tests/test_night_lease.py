"""One night of a project at a time: the lease shared by Airflow tasks and `cxkpi run`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import make_settings

from cxkpi import night_lease
from cxkpi.night_lease import Holder
from cxkpi.warehouse import LockBusy


def never_gone(other: Holder) -> bool:
    return False


def test_a_second_night_finds_the_lease_taken_until_the_first_releases_it(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path)
    first = Holder(run_id="night-1", owner="airflow", dag_id="cx_nightly")
    second = Holder(run_id="night-2", owner="airflow", dag_id="cx_nightly")
    assert night_lease.claim(settings, first, never_gone) is None
    # a retried claim of the same night keeps it
    assert night_lease.claim(settings, first, never_gone) is None
    busy = night_lease.claim(settings, second, never_gone)
    assert busy is not None and busy.run_id == "night-1"
    # only its holder releases it
    assert not night_lease.release(settings, "night-2")
    assert night_lease.release(settings, "night-1")
    assert night_lease.claim(settings, second, never_gone) is None
    assert night_lease.holder(settings) == second


def test_a_lease_whose_night_is_over_is_taken_over(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    crashed = Holder(run_id="crashed", owner="airflow", dag_id="cx_nightly")
    night_lease.claim(settings, crashed, never_gone)
    claimant = Holder(run_id="next", owner="airflow", dag_id="cx_nightly")
    assert night_lease.claim(settings, claimant, lambda other: other.run_id == "crashed") is None
    assert night_lease.holder(settings) == claimant


def test_a_cli_holder_is_over_when_its_process_is(tmp_path: Path) -> None:
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)  # fmt: skip
    dead = Holder(run_id="cli-1", owner="cli", pid=int(finished.stdout))
    alive = Holder(run_id="cli-2", owner="cli", pid=os.getpid())
    assert night_lease.cli_process_is_gone(dead)
    assert not night_lease.cli_process_is_gone(alive)
    # an Airflow holder is never judged from outside Airflow
    assert not night_lease.cli_process_is_gone(Holder(run_id="a", owner="airflow"))


def test_cxkpi_run_fails_at_once_while_an_airflow_night_holds_the_lease(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    airflow_night = Holder(run_id="scheduled__2026-12-03", owner="airflow", dag_id="cx_nightly")
    night_lease.claim(settings, airflow_night, never_gone)
    busy = r"another night of this project is running: night sched"
    with pytest.raises(LockBusy, match=busy), night_lease.cli_night(settings, "cli__now"):
        pass
    assert night_lease.holder(settings) == airflow_night
    night_lease.release(settings, airflow_night.run_id)
    with night_lease.cli_night(settings, "cli__now"):
        assert night_lease.holder(settings).run_id == "cli__now"  # type: ignore[union-attr]
    assert night_lease.holder(settings) is None
