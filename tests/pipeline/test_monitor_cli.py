"""`collapseguard monitor` end to end: the real embedded model on a few short anchor documents,
its files, the baseline comparison, and usage errors that exit 2 before any model loads."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from collapseguard.pipeline.cli import main
from fixtures_data import HUMAN

STORY = ("The lighthouse keeper's daughter counted the ships each evening, writing their names in a "
         "ledger her father had abandoned years before, and wondering which of them carried the letters "
         "that never seemed to arrive at the little stone house above the quillwort marsh.")


@pytest.fixture(scope="module")
def anchor(tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    (run / "anchor").mkdir()
    rows = [{"id": f"a{i}", "text": t, "lang": "en"} for i, t in enumerate(HUMAN + [STORY])]
    pq.write_table(pa.Table.from_pylist(rows), run / "anchor" / "part.parquet")
    return run


ARGS = ["--prompts", "2", "--prompt-words", "8", "--continuation-words", "12", "--max-doc-words", "60", "--max-tokens", "96"]


def test_monitor_with_the_embedded_model_and_a_baseline(anchor, tmp_path, capsys):
    first, second = tmp_path / "m1", tmp_path / "m2"
    assert main(["monitor", "--anchor", str(anchor), "--output", str(first)] + ARGS) == 0
    printed = capsys.readouterr().out
    assert "tail" in printed and f"{first}/monitor.json" in printed
    result = json.load(open(first / "monitor.json"))
    bands = result["perplexity"]["all"]
    assert result["anchor"]["documents"] == 3 and result["model"]["model"] == "default"
    assert bands["head"]["words"] > 0 and bands["tail"]["words"] > 0
    assert bands["tail"]["perplexity"] > bands["head"]["perplexity"] > 1.0  # rare words cost more
    assert 0.0 <= bands["tail"]["recall_at_k"] <= bands["head"]["recall_at_k"] <= 1.0
    assert result["generation"]["prompts"] == 2 and result["generation"]["model"]["words"] > 0
    page = (first / "monitor.html").read_text()
    assert "<svg" in page and "<script" not in page.lower()

    # the same model and seed against itself: the same figures, nothing "worse"
    assert main(["monitor", "--anchor", str(anchor / "anchor"), "--output", str(second),
                 "--baseline", str(first / "monitor.json")] + ARGS) == 0
    assert "against the baseline:" in capsys.readouterr().out
    again = json.load(open(second / "monitor.json"))
    assert again["perplexity"] == result["perplexity"] and again["generation"] == result["generation"]
    assert all(r["change"] in (0, None) and not r["worse"] for r in again["baseline"]["changes"])
    assert "Against the baseline" in (second / "monitor.html").read_text()


def test_usage_errors_exit_2_with_one_line(anchor, tmp_path, capsys):
    def err(argv):
        assert main(["monitor"] + argv) == 2
        e = capsys.readouterr().err.strip()
        assert e.startswith("collapseguard: error:") and "\n" not in e
        return e

    assert "no such folder" in err(["--anchor", str(tmp_path / "missing")])
    (tmp_path / "empty").mkdir()
    assert "no anchor Parquet files" in err(["--anchor", str(tmp_path / "empty")])
    (tmp_path / "bad.json").write_text("{not json")
    assert "--baseline" in err(["--anchor", str(anchor), "--baseline", str(tmp_path / "bad.json")])
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "monitor.json").write_text("{}")
    assert "--overwrite" in err(["--anchor", str(anchor), "--output", str(tmp_path / "taken")])
    assert (tmp_path / "taken" / "monitor.json").read_text() == "{}"  # never overwritten without asking
    assert "--prompts" in err(["--anchor", str(anchor), "--prompts", "-1"])
