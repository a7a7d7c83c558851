"""A private PostgreSQL server for the tests (issue 14): Debian's server binaries, a data
directory under ``build/``, listening on a free port of 127.0.0.1 only, stopped when the
tests are done. ``make test`` installs the server package when it is missing."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

SUPERUSER = "cxkpi"
DATABASE = "cx"


def server_binaries() -> Path | None:
    """The newest installed server's bin folder (Debian: /usr/lib/postgresql/<major>/bin)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class PostgresServer:
    folder: Path
    port: int
    binaries: Path

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} dbname={DATABASE} user={SUPERUSER}"

    def _run(self, *command: str) -> subprocess.CompletedProcess:
        # the server refuses to run as root: as root, run it as Debian's postgres user
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        return subprocess.run(
            [*prefix, *command], capture_output=True, text=True, check=False, timeout=120
        )

    def start(self) -> None:
        data = self.folder / "data"
        if self.folder.exists():
            shutil.rmtree(self.folder)
        self.folder.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        done = self._run(
            str(self.binaries / "initdb"), "-D", str(data), "-U", SUPERUSER,
            "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories={self.folder} -c fsync=off "
            "-c shared_buffers=256MB -c max_connections=50"
        )
        done = self._run(
            str(self.binaries / "pg_ctl"), "-D", str(data), "-l", str(self.folder / "server.log"),
            "-o", options, "-w", "start",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr + self.log()
        deadline = time.monotonic() + 30
        while self._run(str(self.binaries / "pg_isready"), "-h", "127.0.0.1", "-p",
                        str(self.port)).returncode != 0:  # fmt: skip
            assert time.monotonic() < deadline, self.log()
            time.sleep(0.2)
        done = self._run(
            str(self.binaries / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
            "-U", SUPERUSER, DATABASE,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr

    def stop(self) -> None:
        self._run(str(self.binaries / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "fast",
                  "-w", "stop")  # fmt: skip

    def log(self) -> str:
        file = self.folder / "server.log"
        return file.read_text(errors="replace")[-3000:] if file.exists() else ""


def _reachable_by_server_user(folder: Path) -> bool:
    """Whether Debian's postgres user can reach ``folder`` (a checkout under a private home
    folder, /root for one, is not)."""
    parent = folder
    while not parent.exists():
        parent = parent.parent
    probe = subprocess.run(
        ["runuser", "-u", "postgres", "--", "test", "-x", str(parent)], check=False
    )
    return probe.returncode == 0


def start_server(folder: Path) -> PostgresServer:
    binaries = server_binaries()
    assert binaries, "Debian's postgresql server is missing: `make test` installs it"
    if os.geteuid() == 0 and not _reachable_by_server_user(folder):
        folder = Path(tempfile.mkdtemp(prefix="cxkpi-postgres-")) / folder.name
    server = PostgresServer(folder, _free_port(), binaries)
    server.start()
    return server
