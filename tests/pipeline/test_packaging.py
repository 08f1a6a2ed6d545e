"""The wheel builds without setuptools warnings and carries the sample corpus and the shipped
detector, which resolve to existing files after a regular (non-editable) install."""

import glob
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Build outputs, caches and the environment are not copied (as the .gitignore); the rest of
# the checkout is, so the build sees exactly the project's files and never writes build/ or
# *.egg-info into the shared checkout.
_SKIP = {".git", ".venv", "build", "dist", "__pycache__", ".pytest_cache", ".cache", "collapseguard-out"}

# warning classes as setuptools prints them ("...: BuildBackendWarning: Package ... is absent
# from the `packages` configuration", "SetuptoolsDeprecationWarning: Installing ... as data is
# deprecated"); pip's own "WARNING: ..." lines (index locations etc.) are not about the package
_WARNING = re.compile(r"\w*Warning: |as data is deprecated|absent from the `packages`")


def _ignore(folder, names):
    return [n for n in names if n in _SKIP or n.endswith((".egg-info", ".so"))]


def _data_files():
    """Every data file the package must carry, as its path inside the wheel."""
    files = [os.path.join("pipeline", "sample", "config.yaml")]
    for pattern in ("pipeline/sample/*.md", "pipeline/sample/shards/*", "models/shipped/*"):
        found = sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, pattern)) if os.path.isfile(p))
        assert found, f"nothing matches {pattern} in the checkout"
        files += found
    return ["collapseguard/" + f.replace(os.sep, "/") for f in files]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    try:
        import setuptools
    except ImportError:  # pragma: no cover
        pytest.fail("setuptools>=77 is needed to build the wheel: pip install -e '.[test]'")
    assert int(setuptools.__version__.split(".")[0]) >= 77, (
        f"setuptools {setuptools.__version__} < 77: pip install -e '.[test]'")
    tmp = tmp_path_factory.mktemp("packaging")
    src, dist = tmp / "src", tmp / "dist"
    shutil.copytree(ROOT, src, ignore=_ignore)
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                        "-w", str(dist), str(src)], capture_output=True, text=True, env=env, timeout=120)
    log = r.stdout + r.stderr
    assert r.returncode == 0, log
    (whl,) = glob.glob(str(dist / "collapseguard-*.whl"))
    return tmp, whl, log


def test_wheel_builds_without_setuptools_warnings(wheel):
    _, _, log = wheel
    warned = [line.strip() for line in log.splitlines() if _WARNING.search(line)]
    assert not warned, "setuptools warned while building the wheel:\n" + "\n".join(warned)


def test_wheel_carries_sample_corpus_and_shipped_detector(wheel):
    _, whl, _ = wheel
    names = set(zipfile.ZipFile(whl).namelist())
    missing = [f for f in _data_files() if f not in names]
    assert not missing, f"missing from {os.path.basename(whl)}: {missing}"


def test_installed_wheel_resolves_sample_and_shipped_paths(wheel):
    tmp, whl, _ = wheel
    site = tmp / "site"
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                        "--target", str(site), whl], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    # -S: no site processing, so the editable install's .pth finder stays out and `collapseguard`
    # comes from the installed wheel; this environment's site-packages still serve apache_beam.
    paths = [str(site)] + list(dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]))
    code = ("import glob, json, os, collapseguard\n"
            "from collapseguard.pipeline.options import sample_inputs, sample_config\n"
            "from collapseguard.models import shipped_path\n"
            "from collapseguard.core import text\n"
            "print(json.dumps({'pkg': collapseguard.__file__, 'config': sample_config(),\n"
            "  'shards': glob.glob(sample_inputs()), 'shipped': shipped_path(),\n"
            "  'kernel': text.kernel and text.kernel.__file__}))\n")
    r = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, cwd=str(tmp),
                       env=dict(os.environ, PYTHONPATH=os.pathsep.join(paths)), timeout=120)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got["pkg"].startswith(str(site)), got["pkg"]
    assert got["config"].startswith(str(site)) and os.path.isfile(got["config"])
    want = sorted(os.path.basename(p) for p in glob.glob(os.path.join(ROOT, "pipeline", "sample", "shards", "*")))
    assert sorted(os.path.basename(p) for p in got["shards"]) == want
    assert all(p.startswith(str(site)) and os.path.isfile(p) for p in got["shards"])
    for name in ("classifier.ftz", "calibration.json"):
        assert os.path.isfile(os.path.join(got["shipped"], name)), got["shipped"]
    # the compiled kernel is built into the wheel wherever this checkout's install built one
    from collapseguard.core import text
    if text.kernel is not None:
        assert got["kernel"] and got["kernel"].startswith(str(site)), got["kernel"]
