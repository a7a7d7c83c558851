"""One run per project at a time, unique run ids, killed runs recorded, old runs pruned,
and locks of dead processes taken over (real processes, no dbt)."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, make_settings

from cxkpi import pipeline
from cxkpi.cli import main
from cxkpi.errors import ConfigError
from cxkpi.warehouse import LockBusy, process_lock

HOLDER = r"""
import sys, time
from pathlib import Path
from cxkpi.warehouse import process_lock
with process_lock(Path(sys.argv[1]), "run"):
    print("locked", flush=True)
    time.sleep(120)
"""


def test_a_second_run_fails_at_once_naming_the_running_one(tmp_path: Path, capsys) -> None:
    settings = make_settings(tmp_path)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(pipeline.run_lock_path(settings))],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        code = main(["--config", str(REPO / "cxkpi.yml"), "run",
                     "--warehouse", str(settings.warehouse_path),
                     "--published-dir", str(settings.published_dir),
                     "--landing-dir", str(settings.landing_dir)])  # fmt: skip
        assert code == 1 and time.monotonic() - started < 5
        err = capsys.readouterr().err
        assert f"another run is in progress (pid {holder.pid}, started at 20" in err
        assert "Traceback" not in err
    finally:
        holder.kill()
        holder.wait()


def test_the_lock_of_a_killed_process_is_taken_over_with_a_log_line(tmp_path, caplog) -> None:
    lock = tmp_path / "x.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    with pytest.raises(LockBusy, match=f"pid {holder.pid}"), process_lock(lock, "run"):
        pass
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    with caplog.at_level(logging.WARNING), process_lock(lock, "run") as previous:
        assert previous["pid"] == holder.pid
    assert f"of pid {holder.pid}" in caplog.text and "no longer running" in caplog.text


def test_run_ids_are_unique_within_a_second() -> None:
    ids = {pipeline.RunContext.new().run_id for _ in range(200)}
    assert len(ids) == 200


KILLED_RUN = r"""
import sys, time
sys.path.insert(0, sys.argv[2])
from pathlib import Path
from conftest import make_settings
from cxkpi import pipeline

def stall(settings, ctx, write=True):
    print("running", flush=True)
    time.sleep(120)

pipeline.prepare = stall
pipeline.run_all(make_settings(Path(sys.argv[1])), pipeline.RunContext.new("killed", "2026-10-31"))
"""


def test_a_killed_run_is_recorded_and_old_runs_are_pruned(tmp_path, monkeypatch) -> None:
    settings = make_settings(tmp_path).with_overrides(keep_runs=3)
    for day in range(1, 6):  # five finished runs
        old = settings.runs_dir / f"old-{day}"
        old.mkdir(parents=True)
        (old / "run.json").write_text(
            json.dumps({"run_id": f"old-{day}", "state": "succeeded",
                        "started_at": f"2026-10-0{day}T02:00:00+00:00"})
        )  # fmt: skip
    run = subprocess.Popen(
        [sys.executable, "-c", KILLED_RUN, str(tmp_path), str(Path(__file__).parent)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert run.stdout is not None and run.stdout.readline().strip() == "running"
    killed = json.loads((settings.runs_dir / "killed" / "run.json").read_text())
    assert killed["state"] == "running" and killed["pid"] == run.pid
    os.kill(run.pid, signal.SIGKILL)
    run.wait()

    def broken_prepare(settings, ctx, write=True):
        raise ConfigError("stop here")

    monkeypatch.setattr(pipeline, "prepare", broken_prepare)
    with pytest.raises(ConfigError):
        pipeline.run_all(settings, pipeline.RunContext.new("next", "2026-10-31"))
    killed = json.loads((settings.runs_dir / "killed" / "run.json").read_text())
    assert killed["state"] == "interrupted" and "interrupted" in killed["error"]
    following = json.loads((settings.runs_dir / "next" / "run.json").read_text())
    assert following["state"] == "failed" and following["error"] == "prepare: stop here"
    # keep_runs=3: the two newest earlier runs and this one
    assert sorted(p.name for p in settings.runs_dir.iterdir() if p.is_dir()) == [
        "killed", "next", "old-5",
    ]  # fmt: skip
