"""The collapse lab's model (bench/collapse_lab.py): a proper distribution, an open vocabulary,
the monitor's protocol, and the mechanism the lab relies on (a model refitted on its own samples
loses the words it never wrote)."""

import importlib.util
import math
import os
import random
import sys

import pytest

from collapseguard.models.monitor import run_monitor

_PATH = os.path.join(os.path.dirname(__file__), "..", "..", "bench", "collapse_lab.py")


@pytest.fixture(scope="module")
def lab():
    spec = importlib.util.spec_from_file_location("collapse_lab", _PATH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["collapse_lab"] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    yield mod
    sys.modules.pop("collapse_lab", None)


TEXTS = ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog met on the mat",
         "the quillwort grew by the mat", "on the log the cat slept"]


def test_probabilities_sum_to_one_over_known_words_and_unk(lab):
    lm = lab.NgramLM(TEXTS)
    vocab = [w for w in lm._p1 if w != lab.EOS] + [lab.EOS]
    for u, v in [(lab.BOS, lab.BOS), ("the", "cat"), ("sat", "on"), ("zzz", "the"), ("on", "zzz")]:
        total = sum(lm._prob3(u, v, w) for w in vocab) + lm._prob3(u, v, lab.UNK)
        assert total == pytest.approx(1.0, abs=1e-9)
    # an unknown word: finite, and below any known word in the same context
    assert math.isfinite(lm.logprob("the", "cat", "xylophone"))
    assert lm.logprob("the", "cat", "xylophone") < min(lm.logprob("the", "cat", w) for w in vocab)


def test_monitor_protocol_and_determinism(lab):
    lm = lab.NgramLM(TEXTS)
    scored = lm.score("The cat sat, on the zebra!", k=2)
    assert [(s, e) for s, e, _, _ in scored] == [(0, 3), (4, 7), (8, 11), (13, 15), (16, 19), (20, 25)]
    assert scored[0][2:] == (None, None) and scored[-1][3] is False  # an unknown word is never in the top k
    assert lm.generate(["the cat", ""], 10, seed=3) == lm.generate(["the cat", ""], 10, seed=3)
    r = run_monitor(lm, [{"id": str(i), "text": t, "lang": "en"} for i, t in enumerate(TEXTS)],
                    prompts=2, prompt_words=2, continuation_words=3)
    assert r["anchor"]["words_scored"] > 0 and r["model"]["kind"] == "ngram"


def test_refitting_on_own_top_k_samples_loses_rare_words(lab):
    rng = random.Random(0)
    common = "the of and to in a is that for it".split()
    rare = [f"rare{c}{d}" for c in "abcdefghij" for d in "abcdefghij"]  # 100 words, seen once or twice
    texts = [" ".join(rng.choice(common) for _ in range(30)) + " " + rng.choice(rare) for _ in range(150)]
    lm = lab.NgramLM(texts)
    known = {w for w in rare if w in lm._p1}
    for _ in range(3):  # three generations trained on their predecessor's samples alone
        samples = [" ".join(lm.sample_words([], 40, rng, top_k=10)) for _ in range(150)]
        lm = lab.NgramLM(samples)
    assert len({w for w in rare if w in lm._p1}) < len(known) / 2


def test_verdict_separates_a_trend_from_seed_noise(lab):
    # three seeds that all rise by ~10 with a spread of ~1.2: beyond noise, the collapse direction
    v = lab.verdict({0: [10.0, 11.0, 9.0], 5: [20.0, 21.5, 19.0]}, direction=+1)
    assert v["change"] == pytest.approx(61 / 6) and v["beyond_2sd"] is True and v["collapse_direction"] is True
    # a mean change smaller than twice the spread (in the second case the seeds also move both ways)
    assert lab.verdict({0: [10.0, 14.0, 6.0], 5: [12.0, 16.0, 8.0]}, direction=+1)["beyond_2sd"] is False
    assert lab.verdict({0: [10.0, 10.0, 10.0], 5: [11.0, 9.9, 11.0]}, direction=-1)["beyond_2sd"] is False
    assert lab.verdict({0: [1.0]}, direction=+1) is None  # one generation: nothing to compare
    assert lab.verdict({0: [1.0], 2: [3.0]}, direction=+1)["beyond_2sd"] is None  # one seed: no noise estimate


def _runs(lab):
    """Hand-made runs: 'down' loses distinct-2 every generation, 'flat' keeps it; 2 seeds."""
    runs = []
    for arm, step in (("raw-replace", -0.05), ("curated-attested", 0.0)):
        for seed in (0, 1):
            for g in range(3):
                d2 = 0.9 + step * g + 0.002 * seed
                mon = {"generation": {"model": {"distinct_2": d2}, "human": {"distinct_2": 0.93}},
                       "perplexity": {"all": {"tail": {"perplexity": 100.0 * (1 - step * 10) ** g + seed}}}}
                runs.append({"seed": seed, "arm": arm, "generation": g, "monitor": mon, "curation": None,
                             "train": {"documents": 10, "unique_documents": 10, "words": 100,
                                       "synthetic_share_documents": 0.8 if g else 0.0}})
    return runs


def test_summary_table_and_figure_on_hand_made_runs(lab):
    runs = _runs(lab)
    summary = lab.summarize(runs)
    d2 = summary["distinct_2"]
    assert d2["human_reference"] == pytest.approx(0.93)
    down, flat = d2["arms"]["raw-replace"], d2["arms"]["curated-attested"]
    assert down["by_generation"][2]["mean"] == pytest.approx(0.801)
    assert down["verdict"]["beyond_2sd"] is True and down["verdict"]["collapse_direction"] is True
    assert flat["verdict"]["beyond_2sd"] is False
    assert summary["tail_ppl"]["arms"]["raw-replace"]["verdict"]["collapse_direction"] is True
    assert summary["vocabulary"]["arms"] == {}  # a metric no run has is left out, not invented
    arms = ("raw-replace", "curated-attested")
    settings = lab.dataclasses.asdict(lab.Settings(seeds=(0, 1), arms=arms, generations=2))
    md = lab.results_markdown({"settings": settings, "data": {"anchor_documents": 5}, "runs": runs}, summary, arms)
    assert "| raw-replace | 0.901 ± 0.001 | 0.851 ± 0.001 | 0.801 ± 0.001 |" in md
    svg = lab.svg_figure(summary, arms, "test")
    assert svg.startswith("<svg") and svg.count("<polyline") >= 4 and "raw-replace" in svg


def test_lab_end_to_end_is_deterministic_and_never_takes_a_foreign_folder(lab, tmp_path, capsys):
    """The real lab, tiny: generation 0 and one generation of raw-replace and curated-unattested
    (a real `collapseguard run` on the web), twice: the same tables; every web document placed."""
    argv = ["--quick", "--generations", "1", "--arms", "raw-replace", "curated-unattested"]
    a, b = tmp_path / "a", tmp_path / "b"
    assert lab.main(argv + ["--out", str(a)]) == 0
    assert lab.main(argv + ["--out", str(b)]) == 0
    assert (a / "results.md").read_text() == (b / "results.md").read_text()
    assert (a / "collapse.svg").read_text() == (b / "collapse.svg").read_text()
    assert not (a / "_work").exists()
    res = lab.json.loads((a / "results.json").read_text())
    assert sorted((r["arm"], r["generation"]) for r in res["runs"]) == [
        ("curated-unattested", 0), ("curated-unattested", 1), ("raw-replace", 0), ("raw-replace", 1)]
    cur = next(r for r in res["runs"] if r["arm"] == "curated-unattested" and r["generation"] == 1)
    web = lab.QUICK.fresh_docs + lab.QUICK.synthetic_docs
    placed = sum(v["human"] + v["synthetic"] for v in cur["curation"]["strata"].values())
    assert placed + cur["curation"]["not_in_any_stratum"] == web
    assert cur["train"]["documents"] == web
    # a rerun replaces its own outputs; a folder with someone else's file is refused (exit 2)
    assert lab.main(argv[:1] + ["--generations", "1", "--arms", "raw-replace", "--out", str(a)]) == 0
    (b / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit) as e:
        lab.main(argv + ["--out", str(b)])
    assert e.value.code == 2 and "did not write" in capsys.readouterr().err
    assert (b / "notes.txt").read_text() == "mine" and (b / "results.md").exists()
