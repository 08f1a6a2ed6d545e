import json
import os
import subprocess
import sys

import pytest

from collapseguard.pipeline.cli import main
from fixtures_data import HUMAN


def test_main_runs_sample_and_prints_where_outputs_are(tmp_path, capsys):
    out = str(tmp_path / "out")
    assert main(["run", "--output", out, "--scoring-model", "none"]) == 0
    printed = capsys.readouterr().out
    assert f"{out}/manifest.json" in printed and "conserved            True" in printed
    assert json.load(open(os.path.join(out, "manifest.json")))["conserved"]
    # a second run into the same folder must not mix two runs' files
    assert main(["run", "--output", out, "--scoring-model", "none"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["run", "--output", out, "--scoring-model", "none", "--overwrite"]) == 0


def test_bad_flags_and_inputs_fail_fast_with_exit_2(tmp_path, capsys):
    assert main(["run", "--outptu", str(tmp_path)]) == 2
    assert "unknown flag --outptu" in capsys.readouterr().err
    assert main(["run", "--input", str(tmp_path / "none-*.jsonl"), "--output", str(tmp_path / "o")]) == 2
    assert "matched no files" in capsys.readouterr().err
    assert main(["run", "--input", str(tmp_path / "**.jsonl"), "--output", str(tmp_path / "o")]) == 2
    assert "Invalid pattern" in capsys.readouterr().err
    (tmp_path / "x.jsonl").write_text('{"text": "a document"}\n')
    assert main(["run", "--input", str(tmp_path / "x.jsonl"), "--output", str(tmp_path / "o"),
                 "--scoring-model", str(tmp_path / "missing.gguf")]) == 2
    assert "--scoring-model" in capsys.readouterr().err and not (tmp_path / "o").exists()
    # a hub id that is not in the local cache: one line at launch, not a traceback from inference
    assert main(["run", "--input", str(tmp_path / "x.jsonl"), "--output", str(tmp_path / "o"),
                 "--scoring-model", "no-such-org/no-such-model"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no-such-org/no-such-model" in err and "local cache" in err
    assert not (tmp_path / "o").exists()
    assert main(["frobnicate"]) == 2


def test_console_script_is_installed():
    exe = os.path.join(os.path.dirname(sys.executable), "collapseguard")
    r = subprocess.run([exe, "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "run" in r.stdout


def test_hostile_folder_conserves_and_exits_3_naming_the_broken_shard(hostile_dir, tmp_path, capsys):
    folder, expect = hostile_dir
    out = str(tmp_path / "out")
    # the truncated gzip shard is a read error: everything readable is written, the exit says so
    assert main(["run", "--input", f"{folder}/*", "--output", out, "--scoring-model", "none"]) == 3
    captured = capsys.readouterr()
    assert "shards with errors   1" in captured.out and "truncated.jsonl.gz: " in captured.out
    assert "had read errors" in captured.err
    m = json.load(open(os.path.join(out, "manifest.json")))
    assert m["conserved"] and m["records_rejected"] == len(expect["rejected_reasons"])
    assert sum(m["records_by_stratum"].values()) == len(expect["valid_ids"])
    assert [x["shard"] for x in m["shards_with_errors"]] == ["truncated.jsonl.gz"]


def test_unreadable_shard_exits_3_and_the_rest_is_written(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.jsonl").write_text("".join(json.dumps({"id": f"g{i}", "text": HUMAN[i % 2]}) + "\n"
                                               for i in range(4)))
    (folder / "not-gzip.jsonl.gz").write_bytes(b"this is not gzip data at all\n" * 10)
    out = str(tmp_path / "out")
    assert main(["run", "--input", f"{folder}/*", "--output", out, "--scoring-model", "none"]) == 3
    printed = capsys.readouterr().out
    assert "conserved            True" in printed and "not-gzip.jsonl.gz: " in printed
    m = json.load(open(os.path.join(out, "manifest.json")))
    assert sum(m["records_by_stratum"].values()) == 4
    assert [x["shard"] for x in m["shards_with_errors"]] == ["not-gzip.jsonl.gz"]


def test_a_clean_run_prints_no_shard_errors(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.jsonl").write_text(json.dumps({"id": "g", "text": HUMAN[0]}) + "\n")
    assert main(["run", "--input", str(folder / "good.jsonl"), "--output", str(tmp_path / "o"),
                 "--scoring-model", "none"]) == 0
    assert "shards with errors   0" in capsys.readouterr().out


def test_an_output_inside_the_input_glob_is_never_read_back(tmp_path, capsys):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "a.jsonl").write_text(json.dumps({"id": "a", "text": HUMAN[0]}) + "\n{broken\n")
    (folder / "b[1].jsonl").write_text(json.dumps({"id": "b", "text": HUMAN[1]}) + "\n")
    (folder / "b1.jsonl").write_text(json.dumps({"id": "other", "text": HUMAN[0]}) + "\n")
    out = str(folder / "out")
    args = ["run", "--input", f"{folder}/**/*.jsonl", "--output", out, "--scoring-model", "none"]
    assert main(args) == 0
    first = json.load(open(os.path.join(out, "manifest.json")))
    assert main(args + ["--overwrite"]) == 0  # out/rejected/*.jsonl now matches the glob: skipped
    second = json.load(open(os.path.join(out, "manifest.json")))
    assert second["shards_total"] == first["shards_total"] == 3
    assert second["records_read"] == first["records_read"] == 4
    # a literal name with glob characters is that file, not b1.jsonl
    lit = str(tmp_path / "lit")
    assert main(["run", "--input", str(folder / "b[1].jsonl"), "--output", lit, "--scoring-model", "none"]) == 0
    m = json.load(open(os.path.join(lit, "manifest.json")))
    assert [s["shard"] for s in m["shards"]] == ["b[1].jsonl"] and m["records_read"] == 1


@pytest.mark.parametrize("argv, says", [
    (["run", "--lm-max-tokens", "abc"], "invalid int value: 'abc'"),
    (["evaluate"], "required: --labeled"),
    (["train-classifier", "--labeled", "x.jsonl"], "required: --output"),
    (["monitor", "--k", "2"], "required: --anchor"),
    (["frobnicate"], "unknown command 'frobnicate'"),
])
def test_every_usage_error_is_one_line_and_exit_2(argv, says, capsys):
    """Usage errors of every command: exit 2 and one line on stderr that says what is wrong,
    not argparse's usage block."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and says in captured.err and captured.err.startswith("collapseguard: error: ")
    assert captured.out == ""
