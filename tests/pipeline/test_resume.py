"""Kill a running pipeline midway, resume it, and get exactly the uninterrupted outputs."""

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest

from collapseguard.pipeline.cli import main, run
from collapseguard.pipeline.outdir import LOCK
from collapseguard.transforms.commit import differences, fingerprint, fingerprint_parts
from fixtures_data import HUMAN

N_SHARDS = 60


def make_corpus(folder):
    os.makedirs(folder)
    for s in range(N_SHARDS):
        with open(os.path.join(folder, f"part-{s:03d}.jsonl"), "w") as f:
            for i in range(40):
                doc_id = f"d{s}-{i}" if i else f"shared-{s % 7}"  # duplicate ids across shards
                text = f"{HUMAN[(s + i) % 2]} {HUMAN[(s + i + 1) % 2]} Shard {s} item {i}."
                f.write(json.dumps({"id": doc_id, "text": text, "source": "arxiv" if s % 3 else "web"}) + "\n")
            f.write("{broken json\n")


def contents(out):
    rows = set()
    for f in glob.glob(os.path.join(out, "*", "*.parquet")):
        for r in pq.read_table(f).to_pylist():
            rows.add(json.dumps(r, sort_keys=True, default=str))
    rejected = set()
    for f in glob.glob(os.path.join(out, "rejected", "*.jsonl")):
        rejected |= set(open(f).read().splitlines())
    return rows, rejected


def test_kill_midway_then_resume_equals_uninterrupted(tmp_path):
    src = str(tmp_path / "in")
    make_corpus(src)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("provenance: {verified_sources: [arxiv]}\n")
    args = ["--input", f"{src}/*.jsonl", "--config", str(cfg), "--scoring-model", "none"]

    full = str(tmp_path / "full")
    run(args + ["--output", full])

    killed = str(tmp_path / "killed")
    exe = os.path.join(os.path.dirname(sys.executable), "collapseguard")
    proc = subprocess.Popen([exe, "run"] + args + ["--output", killed],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    commits = os.path.join(killed, "_commits")
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if len(glob.glob(os.path.join(commits, "*.json"))) >= 3:
            break
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(glob.glob(os.path.join(commits, "*.json")))
    assert 0 < done < N_SHARDS, f"kill landed outside the finalize stage ({done} committed)"
    assert not os.path.exists(os.path.join(killed, "manifest.json"))

    # a killed run leaves its lock: the refusal says how to clear it, then --resume continues
    assert main(["run"] + args + ["--output", killed, "--resume"]) == 2
    lock = os.path.join(killed, LOCK)
    assert os.path.exists(lock)
    os.remove(lock)
    assert main(["run"] + args + ["--output", killed, "--resume"]) == 0
    assert contents(killed) == contents(full)
    m_full = json.load(open(os.path.join(full, "manifest.json")))
    m_res = json.load(open(os.path.join(killed, "manifest.json")))
    assert m_res["conserved"]
    for key in ("records_read", "records_rejected", "records_by_stratum", "rejected_by_reason", "entropy", "shards",
                "weights", "diversity"):
        assert m_res[key] == m_full[key], key
    # the rarity ramp was calibrated on the run's own documents (not the fixed fallback), and the
    # resumed run reused it: same ramp, same weights
    assert m_full["weights"]["rarity_ramp"]["source"] == "calibrated"
    with open(os.path.join(full, "mixture.json")) as a, open(os.path.join(killed, "mixture.json")) as b:
        assert a.read() == b.read()
    assert not glob.glob(os.path.join(killed, "**", ".tmp-*"), recursive=True)


def test_resume_refuses_other_config(tmp_path):
    src = str(tmp_path / "in")
    make_corpus(src)
    out = str(tmp_path / "out")
    run(["--input", f"{src}/part-00*.jsonl", "--scoring-model", "none", "--output", out])
    other = tmp_path / "c.yaml"
    other.write_text("stratify: {anchor_fraction: 0.2}\n")
    assert main(["run", "--input", f"{src}/part-00*.jsonl", "--scoring-model", "none", "--output", out,
                 "--config", str(other), "--resume"]) == 2


@pytest.mark.parametrize("change", ["detector", "edited_shard", "config", "added_shard"])
def test_resume_refuses_a_run_that_would_mix_outputs(tmp_path, capsys, change):
    src = str(tmp_path / "in")
    make_corpus(src)
    for f in os.listdir(src)[6:]:
        os.remove(os.path.join(src, f))
    out = str(tmp_path / "out")
    args = ["--input", f"{src}/*.jsonl", "--scoring-model", "none", "--output", out]
    assert main(["run"] + args) == 0  # default detector
    capsys.readouterr()
    before = sorted(os.listdir(os.path.join(out, "_commits")))
    if change == "detector":
        args += ["--detector", "none"]
    elif change == "edited_shard":  # same name, same line count: only its bytes and time moved
        path = os.path.join(src, sorted(os.listdir(src))[0])
        data = open(path).read().replace("Shard", "SHARD", 1)
        st = os.stat(path)
        open(path, "w").write(data)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    elif change == "config":
        cfg = tmp_path / "c.yaml"
        cfg.write_text("weights: {cap: 3.0}\n")
        args += ["--config", str(cfg)]
    else:
        with open(os.path.join(src, "zz-new.jsonl"), "w") as f:
            f.write(json.dumps({"id": "new", "text": HUMAN[0]}) + "\n")
    assert main(["run"] + args + ["--resume"]) == 2
    err = capsys.readouterr().err
    want = {"detector": "detector", "edited_shard": "input shards", "config": "config",
            "added_shard": "input shards"}[change]
    assert "--resume" in err and want in err, err
    assert sorted(os.listdir(os.path.join(out, "_commits"))) == before


def test_resume_of_an_unchanged_finished_run_is_accepted(tmp_path):
    src = str(tmp_path / "in")
    make_corpus(src)
    for f in os.listdir(src)[4:]:
        os.remove(os.path.join(src, f))
    out = str(tmp_path / "out")
    args = ["run", "--input", f"{src}/*.jsonl", "--scoring-model", "none", "--output", out]
    assert main(args) == 0
    first = open(os.path.join(out, "manifest.json")).read()
    assert main(args + ["--resume"]) == 0
    assert open(os.path.join(out, "manifest.json")).read() == first


@pytest.mark.parametrize("key,value", [
    ("scoring_model", "some/other-model"), ("lm_max_tokens", 128), ("lm_sample_rate", 0.5),
    ("write_lm_embedding", True), ("detector", None), ("config", {"x": 1}), ("inputs", ["other/*"])])
def test_fingerprint_covers_every_option_that_changes_an_output(key, value):
    info = {"inputs": ["in/*"], "config": {}, "scoring_model": "default", "lm_max_tokens": 512,
            "lm_sample_rate": 1.0, "write_lm_embedding": False, "detector": {"calibration_sha256": "ab"}}
    base = fingerprint_parts(info, {"collapseguard": "0.1.0"}, "m:1", {"a.jsonl": [10, "1"]})
    other = fingerprint_parts(dict(info, **{key: value}), {"collapseguard": "0.1.0"}, "m:1", {"a.jsonl": [10, "1"]})
    assert fingerprint(base) != fingerprint(other)
    assert differences(base, other) == [key.replace("_", "-") if key not in ("config", "inputs") else key]


@pytest.mark.parametrize("part,value", [
    ("versions", {"collapseguard": "0.2.0"}), ("model", "m:2"), ("shards", {"a.jsonl": [10, "2"]}),
    ("shards", {"a.jsonl": [11, "1"]})])
def test_fingerprint_covers_versions_and_shard_identity(part, value):
    args = {"versions": {"collapseguard": "0.1.0"}, "model": "m:1", "shards": {"a.jsonl": [10, "1"]}}
    base = fingerprint_parts({}, args["versions"], args["model"], args["shards"])
    args[part] = value
    other = fingerprint_parts({}, args["versions"], args["model"], args["shards"])
    assert fingerprint(base) != fingerprint(other) and differences(base, other)


def test_resume_within_a_shard_redoes_only_the_chunks_not_committed(tmp_path):
    """A run killed between two chunks of one shard: the chunks it committed are kept as they
    are, the shard's audit still counts their windows, and the result equals an uninterrupted run."""
    src = str(tmp_path / "in")
    make_corpus(src)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("provenance: {verified_sources: [arxiv]}\nread: {chunk_documents: 15}\n")
    args = ["--input", f"{src}/part-00[0-3].jsonl", "--config", str(cfg), "--scoring-model", "none"]
    full = str(tmp_path / "full")
    run(args + ["--output", full])
    m_full = json.load(open(os.path.join(full, "manifest.json")))
    assert {s["chunks"] for s in m_full["shards"]} == {3}  # 41 lines in chunks of 15

    cut = str(tmp_path / "cut")
    shutil.copytree(full, cut)
    for name in ("manifest.json", "mixture.json", "report.html", LOCK):
        if os.path.exists(os.path.join(cut, name)):
            os.remove(os.path.join(cut, name))
    # as if killed after the first chunk of one shard and before any chunk of another
    markers = sorted(glob.glob(os.path.join(cut, "_commits", "*.json")))
    shard_a = os.path.basename(markers[0]).rsplit(".", 3)[0]
    shard_b = os.path.basename(markers[-1]).rsplit(".", 3)[0]
    dropped = [m for m in markers if (shard_a in m and not m.endswith(".00000.00000.json")) or shard_b in m]
    for m in dropped:
        key = os.path.basename(m)[: -len(".json")]
        os.remove(m)
        for f in glob.glob(os.path.join(cut, "*", key + ".*")):
            os.remove(f)
    kept = {os.path.basename(m): os.path.getmtime(m) for m in markers if m not in dropped}
    assert main(["run"] + args + ["--output", cut, "--resume"]) == 0
    assert contents(cut) == contents(full)
    m_res = json.load(open(os.path.join(cut, "manifest.json")))
    for key in ("records_read", "records_by_stratum", "rejected_by_reason", "entropy", "shards", "weights", "diversity"):
        assert m_res[key] == m_full[key], key
    assert {k: os.path.getmtime(os.path.join(cut, "_commits", k)) for k in kept} == kept
