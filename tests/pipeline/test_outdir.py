"""The output folder: refused outputs, the run marker as the ledger of deletable files, the lock."""

import json
import os
import subprocess
import sys

import fsspec
import pyarrow.parquet as pq
import pytest

from collapseguard.pipeline.cli import main
from collapseguard.pipeline.outdir import (
    LOCK, MARKER, LockedError, OutputError, OutputLock, check_output, is_owned, new_marker, owned_files, prepare)
from fixtures_data import HUMAN

TEMP = ".tmp-" + "0" * 32 + "-"


def small_corpus(folder, n=6):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "a.jsonl"), "w") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"d{i}", "text": f"{HUMAN[i % 2]} Item {i}."}) + "\n")
    return os.path.join(folder, "a.jsonl")


def cli(args, capsys=None):
    rc = main(["run", "--scoring-model", "none", "--detector", "none"] + args)
    err = capsys.readouterr().err if capsys else ""
    return rc, err


def tree(root):
    out = {}
    for folder, _, names in os.walk(root):
        for n in names:
            p = os.path.join(folder, n)
            out[os.path.relpath(p, root)] = open(p, "rb").read()
    return out


# ----------------------------------------------------------------------- refused outputs


@pytest.mark.parametrize("make", ["file", "root", "home", "home_tilde", "empty"])
def test_unusable_outputs_are_refused_with_one_line(tmp_path, monkeypatch, capsys, make):
    src = small_corpus(str(tmp_path / "in"))
    home = tmp_path / "home"
    home.mkdir()
    (home / "keep.txt").write_text("mine")
    monkeypatch.setenv("HOME", str(home))
    if make == "file":
        target = tmp_path / "already-a-file"
        target.write_text("not a folder")
        out = str(target)
    else:
        out = {"root": "/", "home": str(home), "home_tilde": "~", "empty": " "}[make]
    rc, err = cli(["--input", src, "--output", out], capsys)
    assert rc == 2
    assert err.count("\n") == 1 and "collapseguard: error: --output" in err and "Traceback" not in err
    assert not (tmp_path / "anchor").exists() and not os.path.exists("anchor")
    assert (home / "keep.txt").read_text() == "mine"
    assert list(home.iterdir()) == [home / "keep.txt"]
    if make == "file":
        assert (tmp_path / "already-a-file").read_text() == "not a folder"


@pytest.mark.parametrize("url", ["memory://", "gs://bucket", "s3://bucket/"])
def test_store_roots_are_refused(url):
    with pytest.raises(OutputError, match="root"):
        check_output(url)


def test_a_folder_inside_a_bucket_or_home_is_fine(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    check_output(str(tmp_path / "out"))
    check_output("memory://bucket/out")


# ----------------------------------------------------------------------- the ledger


def test_owned_files_are_a_pure_function_of_the_marker():
    m = new_marker("fp", {}, ["b-1", "a-2"])
    owned = owned_files(m)
    assert owned[""] == {"manifest.json", "mixture.json", "report.html", MARKER}
    assert owned["review"] == {"a-2.parquet", "b-1.parquet"}
    assert owned["rejected"] == {"a-2.jsonl", "b-1.jsonl"}
    assert owned["_commits"] == {"a-2.json", "b-1.json"}
    assert is_owned(TEMP + "a-2.parquet", owned["review"])
    assert is_owned("a-2.00000.00000.parquet", owned["review"]) and is_owned(TEMP + "b-1.00001.00012.parquet", owned["review"])
    assert is_owned("a-2.00000.00003.json", owned["_commits"]) and is_owned("b-1.00000.00000.jsonl", owned["rejected"])
    assert not is_owned("c-3.00000.00000.parquet", owned["review"]) and not is_owned("a-2.0.0.parquet", owned["review"])
    assert not is_owned("a-2.00000.parquet", owned["review"])
    assert not is_owned(".tmp-session", owned["review"])
    assert not is_owned(".tmp-abc-a-2.parquet", owned["review"])  # not our temp-name shape
    assert not is_owned("draft.docx", owned["review"])


def test_overwrite_refuses_a_folder_that_holds_no_run(tmp_path, capsys):
    src = small_corpus(str(tmp_path / "in"))
    out = tmp_path / "out"
    (out / "review").mkdir(parents=True)
    (out / "review" / "draft.docx").write_text("a user's draft")
    (out / "rejected").mkdir()
    (out / "rejected" / "notes.jsonl").write_text("{}\n")
    before = tree(str(out))
    for flags in ([], ["--overwrite"], ["--resume"]):
        rc, err = cli(["--input", src, "--output", str(out)] + flags, capsys)
        assert rc == 2, flags
        assert "no collapseguard run recorded these files" in err
        assert tree(str(out)) == before  # nothing deleted, nothing written


def test_overwrite_deletes_only_what_the_earlier_run_recorded(tmp_path, capsys):
    src = small_corpus(str(tmp_path / "in"))
    out = tmp_path / "out"
    assert cli(["--input", src, "--output", str(out)], capsys)[0] == 0
    # the user's files, put among the run's files after it ended
    mine = {"review/draft.docx": b"draft", "rejected/notes.jsonl": b"{}\n", "human_unverified/mine.parquet": b"PAR1",
            "_commits/.tmp-session": b"x", ".cache/app/.tmp-session": b"session", "notes.txt": b"n",
            "anchor/" + TEMP + "not-a-shard-of-ours.parquet": b"t"}
    for rel, data in mine.items():
        p = out / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    ours_before = json.load(open(out / MARKER))
    rc, _ = cli(["--input", src, "--output", str(out), "--overwrite"], capsys)
    assert rc == 0
    after = tree(str(out))
    for rel, data in mine.items():
        assert after[rel] == data, rel
    assert json.load(open(out / MARKER))["shard_keys"] == ours_before["shard_keys"]
    assert json.load(open(out / "manifest.json"))["conserved"]


def test_resume_removes_only_its_own_temp_files(tmp_path, capsys):
    src = small_corpus(str(tmp_path / "in"))
    out = tmp_path / "out"
    assert cli(["--input", src, "--output", str(out)], capsys)[0] == 0
    key = json.load(open(out / MARKER))["shard_keys"][0]
    ours = out / "human_unverified" / f"{TEMP}{key}.parquet"
    ours.write_bytes(b"half-written")
    theirs = {".cache/app/.tmp-session": b"s", "review/.tmp-session": b"s", "deep/a/b/.tmp-x": b"x",
              "human_unverified/.tmp-notes": b"n"}
    for rel, data in theirs.items():
        p = out / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    rc, _ = cli(["--input", src, "--output", str(out), "--resume"], capsys)
    assert rc == 0
    assert not ours.exists()
    after = tree(str(out))
    for rel, data in theirs.items():
        assert after[rel] == data, rel


def test_a_plain_run_leaves_unrelated_files_alone_and_refuses_a_second_run(tmp_path, capsys):
    src = small_corpus(str(tmp_path / "in"))
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("keep")
    rc, err = cli(["--input", src, "--output", str(out), "--overwrite"], capsys)
    assert rc == 2 and "holds no earlier collapseguard run" in err  # nothing of ours to replace
    assert sorted(os.listdir(out)) == ["notes.txt"]
    assert cli(["--input", src, "--output", str(out)], capsys)[0] == 0
    assert (out / "notes.txt").read_text() == "keep"
    rc, err = cli(["--input", src, "--output", str(out)], capsys)
    assert rc == 2 and "--overwrite" in err


def test_prepare_works_on_an_object_store():
    fs = fsspec.filesystem("memory")
    out = "memory://cg-prepare/out"
    m = new_marker("fp1", {}, ["k"])
    assert prepare(out, overwrite=False, resume=False, marker=m) == 0
    fs.pipe("/cg-prepare/out/review/k.parquet", b"PAR1")
    fs.pipe("/cg-prepare/out/review/user.txt", b"u")
    assert prepare(out, overwrite=True, resume=False, marker=m) == 2  # the stratum file and the old marker
    assert fs.exists("/cg-prepare/out/review/user.txt") and not fs.exists("/cg-prepare/out/review/k.parquet")
    fs.rm("/cg-prepare", recursive=True)


# ----------------------------------------------------------------------- the lock


@pytest.mark.parametrize("base", ["local", "memory"])
def test_lock_admits_one_holder_and_releases_only_its_own(tmp_path, base):
    out = str(tmp_path / "out") if base == "local" else "memory://cg-lock/out"
    first = OutputLock(out)
    first.acquire()
    second = OutputLock(out)
    with pytest.raises(LockedError, match="in use by another collapseguard run"):
        second.acquire()
    second.release()  # not its lock: nothing happens
    fs, path = fsspec.core.url_to_fs(out)
    assert fs.exists(f"{path}/{LOCK}")
    first.release()
    assert not fs.exists(f"{path}/{LOCK}")
    with OutputLock(out):
        assert fs.exists(f"{path}/{LOCK}")
    assert not fs.exists(f"{path}/{LOCK}")


def test_a_stale_lock_is_reported_with_how_to_clear_it(tmp_path, capsys):
    import socket

    src = small_corpus(str(tmp_path / "in"))
    out = tmp_path / "out"
    out.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / LOCK).write_text(json.dumps({"tool": "collapseguard", "token": "t", "pid": dead.pid,
                                        "host": socket.gethostname(), "started": "2026-01-01T00:00:00+00:00"}))
    rc, err = cli(["--input", src, "--output", str(out)], capsys)
    assert rc == 2
    assert "no longer alive" in err and f"rm {out / LOCK}" in err and err.count("\n") == 1
    assert (out / LOCK).exists()  # reported, never taken over silently
    os.remove(out / LOCK)
    assert cli(["--input", src, "--output", str(out)], capsys)[0] == 0
    assert not (out / LOCK).exists()


def test_two_runs_started_together_into_one_folder(tmp_path):
    folder = str(tmp_path / "in")
    os.makedirs(folder)
    for s in range(6):
        with open(os.path.join(folder, f"p{s}.jsonl"), "w") as f:
            for i in range(10):
                f.write(json.dumps({"id": f"d{s}-{i}", "text": f"{HUMAN[i % 2]} {s} {i}."}) + "\n")
    out = str(tmp_path / "out")
    exe = os.path.join(os.path.dirname(sys.executable), "collapseguard")
    cmd = [exe, "run", "--input", f"{folder}/*.jsonl", "--output", out, "--scoring-model", "none", "--detector", "none"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    codes = sorted(rc for rc, _ in results)
    assert codes == [0, 2], results
    loser = next(err for rc, err in results if rc == 2)
    assert "in use by another collapseguard run" in loser
    m = json.load(open(os.path.join(out, "manifest.json")))
    rows = sum(pq.read_metadata(os.path.join(d, f)).num_rows
               for d, _, fs in os.walk(out) for f in fs if f.endswith(".parquet"))
    assert m["records_read"] == 60 and rows == sum(m["records_by_stratum"].values()) == 60
    assert not os.path.exists(os.path.join(out, LOCK))
