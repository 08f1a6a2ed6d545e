"""A default `collapseguard run` (DirectRunner, no LM) writes nothing into the user's home.

Beam >= 2.68's DirectRunner first tries the Prism runner, which creates
~/.apache_beam/cache/prism/bin (and, online, downloads a Go binary into it) before falling
back to the FnApiRunner; the CLI pins the FnApiRunner when no --runner is given.
"""

import os
import subprocess
import sys

# environment variables that point caches and configuration somewhere other than $HOME: dropped,
# so that anything the run caches or configures lands under the (empty) home and shows up here
_ELSEWHERE = ("XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "COLLAPSEGUARD_CACHE",
              "HF_HOME", "TORCH_HOME", "FTLANG_CACHE")


def _tree(folder):
    return sorted(os.path.relpath(os.path.join(d, n), folder) for d, dirs, files in os.walk(folder)
                  for n in dirs + files)


def test_default_run_leaves_home_untouched(tmp_path):
    home, out = tmp_path / "home", tmp_path / "out"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in _ELSEWHERE}
    env["HOME"] = str(home)
    exe = os.path.join(os.path.dirname(sys.executable), "collapseguard")
    r = subprocess.run([exe, "run", "--scoring-model", "none", "--output", str(out)], cwd=str(tmp_path),
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert os.path.exists(out / "manifest.json")
    assert _tree(home) == [], f"the run wrote into $HOME: {_tree(home)}"
