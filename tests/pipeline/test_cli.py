import json
import os
import subprocess
import sys

from collapseguard.pipeline.cli import main


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
    assert main(["frobnicate"]) == 2


def test_console_script_is_installed():
    exe = os.path.join(os.path.dirname(sys.executable), "collapseguard")
    r = subprocess.run([exe, "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "run" in r.stdout


def test_hostile_folder_runs_with_exit_0_and_conserves(hostile_dir, tmp_path, capsys):
    folder, expect = hostile_dir
    out = str(tmp_path / "out")
    assert main(["run", "--input", f"{folder}/*", "--output", out, "--scoring-model", "none"]) == 0
    m = json.load(open(os.path.join(out, "manifest.json")))
    assert m["conserved"] and m["records_rejected"] == len(expect["rejected_reasons"])
    assert sum(m["records_by_stratum"].values()) == len(expect["valid_ids"])
