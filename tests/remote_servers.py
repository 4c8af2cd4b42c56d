"""Real storage servers for the remote tests: OpenSSH's sshd and moto's S3 server.

Each runs on 127.0.0.1 on a free port, with throwaway keys and config in a temp dir, in
the foreground (`sshd -D`, `moto_server`) as a child process that the fixture stops.
A server that is not installed makes its tests skip (scripts/services.sh installs sshd).
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Storage:
    """How to point a repository at one kind of DVC remote (and at a dead one)."""

    kind: str
    base_url: str  # a fresh remote is base_url + "/" + a unique name
    options: dict[str, str] = field(default_factory=dict)  # `dvc remote modify` options
    env: dict[str, str] = field(default_factory=dict)
    dead_url: str = ""
    dead_options: dict[str, str] = field(default_factory=dict)
    local_root: Path | None = None  # where a remote's objects are on disk, when they are

    def fresh_url(self) -> str:
        return f"{self.base_url}/{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Storage]:
    binary = shutil.which("sshd") or (
        "/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else None
    )
    if binary is None:
        pytest.skip("sshd is not installed (scripts/services.sh installs openssh-server)")
    d = tmp_path_factory.mktemp("sshd")
    for name in ("host_key", "user_key"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)], check=True
        )
    shutil.copy(d / "user_key.pub", d / "authorized_keys")
    os.chmod(d / "authorized_keys", 0o600)
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation dir
    store = d / "store"
    store.mkdir()
    proc = None
    for _attempt in range(5):
        port = free_port()
        (d / "sshd_config").write_text(
            f"Port {port}\n"
            "ListenAddress 127.0.0.1\n"
            f"HostKey {d / 'host_key'}\n"
            f"PidFile {d / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {d / 'authorized_keys'}\n"
            "PubkeyAuthentication yes\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "PermitRootLogin prohibit-password\n"
            "UsePAM no\n"
            "StrictModes no\n"
            "MaxStartups 100\n"
            "MaxSessions 100\n"
            "Subsystem sftp internal-sftp\n"
            "LogLevel ERROR\n"
        )
        proc = subprocess.Popen(
            [binary, "-D", "-e", "-f", str(d / "sshd_config")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(d / "sshd.log", "ab"),  # noqa: SIM115 - closed with the process
        )
        if wait_for_port(port, proc):
            break
        stop(proc)
        proc = None
    if proc is None:
        pytest.skip(f"sshd did not start: {(d / 'sshd.log').read_text()[-500:]}")
    dead = free_port()
    user = getpass.getuser()
    try:
        yield Storage(
            kind="ssh",
            base_url=f"ssh://{user}@127.0.0.1:{port}{store}",
            options={"keyfile": str(d / "user_key")},
            dead_url=f"ssh://{user}@127.0.0.1:{dead}{store}/dead",
            dead_options={"keyfile": str(d / "user_key"), "timeout": "5"},
            local_root=store,
        )
    finally:
        stop(proc)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Storage]:
    binary = BIN / "moto_server"
    if not binary.exists():
        pytest.skip("moto_server is not installed (pip install 'moto[server]')")
    d = tmp_path_factory.mktemp("moto")
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        # A dead endpoint should fail in seconds, not after botocore's retry ladder.
        "AWS_MAX_ATTEMPTS": "2",
    }
    proc = None
    for _attempt in range(5):
        port = free_port()
        proc = subprocess.Popen(
            [str(binary), "-H", "127.0.0.1", "-p", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(d / "moto.log", "ab"),  # noqa: SIM115 - closed with the process
            env={**os.environ, **env},
        )
        if wait_for_port(port, proc):
            break
        stop(proc)
        proc = None
    if proc is None:
        pytest.skip(f"moto_server did not start: {(d / 'moto.log').read_text()[-500:]}")
    endpoint = f"http://127.0.0.1:{port}"
    import boto3

    boto3.client("s3", endpoint_url=endpoint, **_boto_creds(env)).create_bucket(Bucket="weights")
    dead = free_port()
    try:
        yield Storage(
            kind="s3",
            base_url="s3://weights",
            options={"endpointurl": endpoint},
            env=env,
            dead_url="s3://weights/dead",
            dead_options={"endpointurl": f"http://127.0.0.1:{dead}", "connect_timeout": "2"},
        )
    finally:
        stop(proc)


def _boto_creds(env: dict[str, str]) -> dict[str, str]:
    return {
        "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
        "region_name": env["AWS_DEFAULT_REGION"],
    }


@pytest.fixture(scope="session")
def local_storage(tmp_path_factory: pytest.TempPathFactory) -> Storage:
    d = tmp_path_factory.mktemp("localstore")
    blocker = d / "not-a-directory"
    blocker.write_text("a file where a directory should be\n")
    return Storage(kind="local", base_url=str(d), dead_url=str(blocker / "store"), local_root=d)


@pytest.fixture(params=["local", "ssh", "s3"])
def storage(request: pytest.FixtureRequest) -> Storage:
    fixture = {"local": "local_storage", "ssh": "sshd", "s3": "s3_server"}[request.param]
    result: Storage = request.getfixturevalue(fixture)
    return result


@dataclass
class GitDaemon:
    """`git daemon` serving every bare repository under base, pushes allowed."""

    base: Path
    port: int

    def url(self, name: str) -> str:
        return f"git://127.0.0.1:{self.port}/{name}"


@pytest.fixture(scope="session")
def git_daemon(
    tmp_path_factory: pytest.TempPathFactory, base_env: dict[str, str]
) -> Iterator[GitDaemon]:
    """A real git daemon: its receive-pack runs the server hooks as a push really does."""
    base = tmp_path_factory.mktemp("daemon")
    proc = None
    port = 0
    for _attempt in range(5):
        port = free_port()
        proc = subprocess.Popen(
            [
                "git",
                "daemon",
                "--reuseaddr",
                "--export-all",
                "--enable=receive-pack",
                f"--base-path={base}",
                "--listen=127.0.0.1",
                f"--port={port}",
                str(base),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(base.parent / f"{base.name}.log", "ab"),  # noqa: SIM115 - closed with the process
            env=base_env,
        )
        if wait_for_port(port, proc):
            break
        stop(proc)
        proc = None
    if proc is None:
        pytest.skip("git daemon did not start")
    try:
        yield GitDaemon(base, port)
    finally:
        stop(proc)
