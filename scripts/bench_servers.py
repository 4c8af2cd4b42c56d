"""The storage servers behind scripts/bench.py's push and pull rows: OpenSSH's sshd and
moto's S3 server, started on 127.0.0.1 for the run and stopped after it.

The same servers the remote tests use (tests/remote_servers.py), set up the same way:
throwaway keys and config in the bench's temporary directory, `sshd -D` and
`moto_server` in the foreground as children of the bench. A server that is missing or
does not start gives its rows a reason to skip (`skipped: why`) instead of failing the
run. Each kind of remote gets one URL for `git model` and one for `dvc`, so the two never
share objects, and a way to empty them between runs (untimed).
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class RemoteKind:
    """One kind of DVC remote as the bench points a repository at it."""

    kind: str  # "local", "ssh" or "s3"
    title: str  # how the rows name it
    urls: dict[str, str]  # "gm" / "dvc" -> URL
    options: dict[str, str] = field(default_factory=dict)  # `remote modify` options
    skip: str = ""  # why its rows cannot run here
    clear: Callable[[str], None] = lambda who: None  # empty the remote of "gm" or "dvc"
    # "gm" / "dvc" -> (requests so far by method and kind, the server's CPU seconds so far):
    # read before and after a run, the difference is what that run cost the server.
    probe: Callable[[str], tuple[dict[str, int], float]] | None = None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> bool:
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


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _process_cpu(pid: int) -> float:
    """User + system CPU seconds of a running process, every thread of it (Linux /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def _request_kind(method: str, target: str) -> str:
    """One S3 request from moto's access log as METHOD kind: object, manifest (.dir),
    list, multipart, other."""
    path, _, query = target.partition("?")
    if method == "GET" and ("list-type" in query or "prefix=" in query or path.count("/") < 2):
        return "LIST"
    if "uploads" in query or "uploadId" in query:
        return f"{method} multipart"
    if "/files/md5/" in path:
        return f"{method} {'manifest' if path.endswith('.dir') else 'object'}"
    return f"{method} other"


def moto_requests(log: Path, bucket: str) -> dict[str, int]:
    """Requests moto's access log (werkzeug's, on stderr) shows for bucket, by kind."""
    counts: dict[str, int] = {}
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return counts
    for line in text.splitlines():
        # 127.0.0.1 - - [01/Dec/2026 18:42:12] "PUT /bench-gm/store/files/md5/ab/cd HTTP/1.1" 200 -
        _, quote, rest = line.partition('"')
        parts = rest.split(" ", 2) if quote else []
        if len(parts) < 2:
            continue
        path = parts[1].split("?", 1)[0]
        if path.rstrip("/") != f"/{bucket}" and not path.startswith(f"/{bucket}/"):
            continue
        kind = _request_kind(parts[0], parts[1])
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def _rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


class Servers:
    """sshd and moto for one bench run: `with Servers(dir, env) as s: s.kinds`."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.dir = workdir / "servers"
        self.env = env  # the bench's environment: S3 credentials are added to it
        self.procs: list[subprocess.Popen[bytes]] = []
        self.kinds: list[RemoteKind] = []

    def __enter__(self) -> Servers:
        self.dir.mkdir(parents=True, exist_ok=True)
        local = self.dir / "local"
        self.kinds = [
            RemoteKind(
                "local",
                "a local",
                {who: str(local / who) for who in ("gm", "dvc")},
                clear=lambda who: _rmtree(local / who),
            ),
            self._ssh(),
            self._s3(),
        ]
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs:
            _stop(proc)

    def _start(
        self, argv: list[str], log: Path, env: dict[str, str] | None = None
    ) -> tuple[subprocess.Popen[bytes] | None, int]:
        """Start a server that takes its port from argv's "{port}"; (process, port)."""
        for _attempt in range(5):
            port = _free_port()
            with open(log, "ab") as err:
                proc = subprocess.Popen(
                    [a.replace("{port}", str(port)) for a in argv],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                    env=env,
                )
            if _wait_for_port(port, proc):
                self.procs.append(proc)
                return proc, port
            _stop(proc)
        return None, 0

    def _ssh(self) -> RemoteKind:
        d = self.dir / "sshd"
        store = d / "store"
        kind = RemoteKind("ssh", "an ssh", {})
        binary = shutil.which("sshd") or (
            "/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else None
        )
        if binary is None or not shutil.which("ssh-keygen"):
            kind.skip = "skipped: sshd is not installed (scripts/services.sh installs it)"
            return kind
        store.mkdir(parents=True)
        for name in ("host_key", "user_key"):
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)], check=True
            )
        shutil.copy(d / "user_key.pub", d / "authorized_keys")
        os.chmod(d / "authorized_keys", 0o600)
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation dir
        (d / "sshd_config.in").write_text(
            "Port {port}\n"
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
        # sshd reads its port from its config: write one per attempt.
        proc = None
        for _attempt in range(5):
            port = _free_port()
            conf = d / "sshd_config"
            conf.write_text((d / "sshd_config.in").read_text().replace("{port}", str(port)))
            with open(d / "sshd.log", "ab") as err:
                proc = subprocess.Popen(
                    [binary, "-D", "-e", "-f", str(conf)],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                )
            if _wait_for_port(port, proc):
                self.procs.append(proc)
                break
            _stop(proc)
            proc = None
        if proc is None:
            log = (d / "sshd.log").read_text(errors="replace").strip().splitlines()
            kind.skip = f"skipped: sshd did not start ({(log or ['?'])[-1]})"
            return kind
        user = getpass.getuser()
        kind.urls = {who: f"ssh://{user}@127.0.0.1:{port}{store / who}" for who in ("gm", "dvc")}
        kind.options = {"keyfile": str(d / "user_key")}
        kind.clear = lambda who: _rmtree(store / who)
        return kind

    def _s3(self) -> RemoteKind:
        kind = RemoteKind("s3", "an S3 (moto)", {})
        binary = Path(sys.executable).parent / "moto_server"
        if not binary.exists():
            kind.skip = "skipped: moto_server is not installed (pip install 'moto[server]')"
            return kind
        try:
            import boto3
        except ImportError:
            kind.skip = "skipped: boto3 is not installed (it comes with moto[server])"
            return kind
        creds = {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        self.env.update(creds)
        proc, port = self._start(
            [str(binary), "-H", "127.0.0.1", "-p", "{port}"],
            self.dir / "moto.log",
            env={**self.env},
        )
        if proc is None:
            kind.skip = "skipped: moto_server did not start"
            return kind
        endpoint = f"http://127.0.0.1:{port}"
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
            region_name=creds["AWS_DEFAULT_REGION"],
        )
        for who in ("gm", "dvc"):
            client.create_bucket(Bucket=f"bench-{who}")

        def clear(who: str) -> None:
            bucket = f"bench-{who}"
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
                if keys:
                    client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})

        log = self.dir / "moto.log"

        def probe(who: str) -> tuple[dict[str, int], float]:
            return moto_requests(log, f"bench-{who}"), _process_cpu(proc.pid)

        kind.urls = {who: f"s3://bench-{who}/store" for who in ("gm", "dvc")}
        kind.options = {"endpointurl": endpoint}
        kind.clear = clear
        kind.probe = probe
        return kind
