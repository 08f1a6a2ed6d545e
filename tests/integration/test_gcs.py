"""The stage reading and writing gs:// through gcsfs, against a local GCS emulator.

The emulator (gcp-storage-emulator) pins dependencies that clash with ours, so it runs from its
own venv in .cache/ (built on first use, ~10 s from a warm pip cache). The run is a
`collapseguard run --input gs://... --output gs://...` subprocess with:
  STORAGE_EMULATOR_HOST               gcsfs talks to the emulator instead of storage.googleapis.com
  GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT   false: else gcsfs probes the bucket layout API (60 s hangs)
  FSSPEC_GCS_TOKEN=anon               fsspec's per-protocol config for gcsfs `token=`: anonymous
                                      (on real GCS leave it unset: Application Default Credentials)
GOOGLE_APPLICATION_CREDENTIALS points at a fake service-account key holding a canary: nothing
may read it in emulator mode, and neither it nor any credential-looking string may appear in the
run's logs or outputs.
"""

import glob
import json
import os
import re
import secrets

import pytest
from collapseguard.pipeline.outdir import LOCK, MARKER
from integration_support import REPO, free_port, local_tree, run_cli, server, tool_venv

pytestmark = pytest.mark.integration

BUCKET = "collapseguard-it"
# What leaked Google credentials look like: OAuth access tokens, key files, auth headers.
CREDENTIAL_PATTERNS = re.compile(rb"ya29\.|private_key|refresh_token|client_secret|access_token|"
                                 rb"Authorization:|Bearer ", re.IGNORECASE)


@pytest.fixture(scope="module")
def gcs(tmp_path_factory):
    """(endpoint URL, gcsfs filesystem) of an in-memory emulator holding the sample under in/."""
    from gcsfs.core import GCSFileSystem  # the plain class, whatever GCSFS_EXPERIMENTAL_* says

    from collapseguard.pipeline.options import sample_inputs

    venv = tool_venv("gcs-emulator-venv")
    port = free_port()
    log = tmp_path_factory.mktemp("gcs-emulator") / "emulator.log"
    cmd = [str(venv / "bin" / "python"), str(REPO / "tests" / "integration" / "gcs_emulator.py"),
           str(port), BUCKET]
    with server(cmd, port, log, timeout=60):
        endpoint = f"http://127.0.0.1:{port}"
        fs = GCSFileSystem(token="anon", endpoint_url=endpoint, skip_instance_cache=True)
        for f in sorted(glob.glob(sample_inputs())):
            fs.put_file(f, f"{BUCKET}/in/{os.path.basename(f)}")
        yield endpoint, fs


def read_tree(fs, root):
    fs.invalidate_cache()
    return {p[len(root) + 1:]: fs.cat_file(p) for p in fs.find(root)}


def fingerprints(tree):
    return {json.loads(v)["fingerprint"] for k, v in tree.items() if k.startswith("_commits/")}


def test_gs_input_and_output_match_a_local_run(gcs, direct_run, tmp_path):
    from collapseguard.pipeline.options import sample_config, sample_inputs

    endpoint, fs = gcs
    canary = "collapseguard-canary-" + secrets.token_hex(16)
    key_file = tmp_path / "fake-service-account.json"
    key_file.write_text(json.dumps({
        "type": "service_account", "project_id": "it", "private_key_id": canary,
        "private_key": f"-----BEGIN PRIVATE KEY-----\n{canary}\n-----END PRIVATE KEY-----\n",
        "client_email": "it@it.iam.gserviceaccount.com", "client_id": "1",
        "token_uri": "http://127.0.0.1:9/token"}))
    env = dict(os.environ, STORAGE_EMULATOR_HOST=endpoint, GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT="false",
               FSSPEC_GCS_TOKEN="anon", GOOGLE_APPLICATION_CREDENTIALS=str(key_file))
    gs_input, gs_output = f"gs://{BUCKET}/in/*", f"gs://{BUCKET}/out"
    proc = run_cli(["run", "--input", gs_input, "--output", gs_output, "--config", sample_config(),
                    "--scoring-model", "none"], env=env)

    remote = read_tree(fs, f"{BUCKET}/out")
    local = local_tree(direct_run)
    # strata, rejected and the manifest all landed on gs://; no half-written temp file left
    landed = {k.split("/")[0] for k in remote}
    assert landed >= {"human_verified", "anchor", "review", "rejected", "manifest.json"}
    assert not [k for k in remote if os.path.basename(k).startswith(".tmp-")]
    manifest = json.loads(remote["manifest.json"])
    assert manifest["conserved"] is True and manifest["inputs"] == [gs_input]
    assert f"wrote {gs_output}" in proc.stdout

    # Same files; data files byte-identical; the others differ at most where the run records
    # its --input (the manifest's `inputs`, the commit markers' fingerprint of inputs + config).
    assert sorted(remote) == sorted(local)
    swaps = [(gs_input.encode(), sample_inputs().encode())]
    (fp_remote,), (fp_local,) = fingerprints(remote) or {""}, fingerprints(local) or {""}
    if fp_remote:
        swaps.append((fp_remote.encode(), fp_local.encode()))
    differ = []
    # the run marker records each shard's store identity (GCS generation vs local mtime)
    assert json.loads(remote[MARKER])["shard_keys"] == json.loads(local[MARKER])["shard_keys"]
    assert LOCK not in remote and LOCK not in local  # released at the end
    for name, data in remote.items():
        if name == MARKER:
            continue
        if data != local[name]:
            differ.append(name)
            for a, b in swaps:
                data = data.replace(a, b)
            assert data == local[name], f"{name} differs beyond the input URL"
    assert not [n for n in differ if n.endswith((".parquet", ".jsonl"))], differ
    assert "manifest.json" in differ

    # No credential in any log line or output file.
    logs = [("stdout", proc.stdout.encode()), ("stderr", proc.stderr.encode())]
    for where, data in logs + list(remote.items()):
        assert canary.encode() not in data, where
        assert not CREDENTIAL_PATTERNS.search(data), (where, CREDENTIAL_PATTERNS.search(data))


def test_the_output_lock_holds_on_gcs(gcs, monkeypatch):
    """The lock's does-not-exist precondition (ifGenerationMatch=0) against the emulator: of two
    runs, the second is refused, and a release never removes another run's lock."""
    from collapseguard.pipeline.outdir import LockedError, OutputLock

    endpoint, fs = gcs
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", endpoint)
    monkeypatch.setenv("FSSPEC_GCS_TOKEN", "anon")
    monkeypatch.setenv("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
    out = f"gs://{BUCKET}/locked-out"
    first = OutputLock(out)
    first.acquire()
    second = OutputLock(out)
    with pytest.raises(LockedError, match="in use by another collapseguard run"):
        second.acquire()
    second.release()
    fs.invalidate_cache()
    assert fs.exists(f"{BUCKET}/locked-out/{LOCK}")
    first.release()
    fs.invalidate_cache()
    assert not fs.exists(f"{BUCKET}/locked-out/{LOCK}")
