"""The tail monitor's measures on hand-made inputs and hand-made models whose answers are known."""

import math

import pytest

from collapseguard.models.monitor import (
    ZipfBands,
    compare,
    generation_diversity,
    run_monitor,
    settings_differ,
    word_spans,
    words_from_tokens,
)

HEAD_WORDS = ["the", "and", "of", "to", "in"]  # Zipf >= 5 in English
TAIL_WORDS = ["quillwort", "cyanobacteria", "palimpsest", "zzyzxq"]  # Zipf < 3 (the last unknown)


@pytest.fixture(scope="module")
def bands():
    b = ZipfBands()
    assert all(b.band(w, "en") == "head" for w in HEAD_WORDS)
    assert all(b.band(w, "en") == "tail" for w in TAIL_WORDS)
    assert b.band("house", "en") in ("head", "torso") and b.band("anything", "xx") is None
    return b


class BagOfWords:
    """A unigram model: p(word) from a fixed table, whatever came before. Its tokens are the
    stage's words; its top-k are the k most probable words of the table."""

    def __init__(self, probs: dict, unknown: float = 1e-9, sample: str = ""):
        self.probs, self.unknown, self.sample = probs, unknown, sample

    def describe(self):
        return {"kind": "bag-of-words", "model": "test"}

    def score(self, text, k):
        top = set(sorted(self.probs, key=lambda w: (-self.probs[w], w))[:k])
        out = []
        for i, (s, e, w) in enumerate(word_spans(text)):
            if i == 0:
                out.append((s, e, None, None))
            else:
                out.append((s, e, math.log(self.probs.get(w, self.unknown)), w in top))
        return out

    def generate(self, prompts, max_new_tokens, seed):
        return [self.sample for _ in prompts]


def test_distinct_n_and_diversity_on_known_texts():
    d = generation_diversity([["a", "b", "a", "b"], ["c", "c"]])
    assert d["distinct_1"] == pytest.approx(3 / 6)
    assert d["distinct_2"] == pytest.approx(3 / 4)  # ab ba ab | cc: no n-gram crosses texts
    assert d["distinct_3"] == pytest.approx(2 / 2)  # aba bab
    assert d["vocabulary"] == 3 and d["words"] == 6 and d["texts"] == 2
    assert d["msttr"] is None  # no full 25-word segment
    assert d["self_similarity"] is None  # only one text has a 4-gram: nothing to compare it with
    two = generation_diversity([["a", "b"] * 25 + ["c"]])
    assert two["msttr"] == pytest.approx(2 / 25)  # two full 25-word segments of 2 types; "c" is left over


def test_band_perplexity_and_tail_recall_of_a_bag_of_words_model(bands):
    p_head, p_tail = 0.1, 0.001
    probs = {w: p_head for w in HEAD_WORDS} | {w: p_tail for w in TAIL_WORDS}
    text = "the quillwort and the palimpsest of cyanobacteria in the zzyzxq to the"
    r = run_monitor(BagOfWords(probs), [{"id": "a", "text": text, "lang": "en"}], prompts=0, k=5)
    ppl = r["perplexity"]["all"]
    # the first word has no context; every other head word costs 1/p_head, every tail word 1/p_tail
    assert ppl["head"]["words"] == 7 and ppl["tail"]["words"] == 4 and ppl["torso"]["words"] == 0
    assert ppl["head"]["perplexity"] == pytest.approx(1 / p_head)
    assert ppl["tail"]["perplexity"] == pytest.approx(1 / p_tail)
    assert ppl["torso"]["perplexity"] is None
    # top-5 is the five head words: every head word recalled, no tail word
    assert r["tail_recall_at_k"] == {"head": 1.0, "torso": None, "tail": 0.0}
    assert r["anchor"]["words_skipped"] == {"no_table": 0, "no_context": 1}


def test_a_model_that_repeats_one_sentence(bands):
    sentence = "the cat sat on the mat . "
    human = ["Rain fell on the harbour while ferries idled, their captains arguing about tides, tariffs and the price "
             "of diesel. Nobody expected the strike to last; by noon the quay was empty and cold.",
             "My grandmother kept bees behind the orchard wall, forty hives painted in colours she mixed herself "
             "from whatever the hardware shop had left over that spring, lilac mostly.",
             "The committee adjourned without a vote after two members walked out over the budget, leaving the "
             "chair to explain to reporters why the library would close on Sundays again.",
             "Quantum dots emit light whose colour depends on their size: smaller crystals glow blue, larger ones "
             "red, which is why manufacturers sort them so carefully before coating the film."]
    docs = [{"id": f"d{i}", "text": t, "lang": "en"} for i, t in enumerate(human)]
    r = run_monitor(BagOfWords({"the": 0.5}, sample=sentence * 20), docs, prompts=4, prompt_words=8,
                    continuation_words=20)
    m, h = r["generation"]["model"], r["generation"]["human"]
    assert r["generation"]["prompts"] == 4 and m["words"] == h["words"] == 80
    assert m["vocabulary"] == 5  # the cat sat on mat
    assert m["distinct_1"] == pytest.approx(5 / 80, abs=1e-6)
    assert m["distinct_2"] == pytest.approx(6 / 76, abs=1e-6)  # the-cat cat-sat sat-on on-the the-mat mat-the
    assert m["self_similarity"] == 1.0  # every 4-gram of each text is in another
    assert m["msttr"] is None  # 20 words: no full 25-word segment
    assert h["distinct_2"] == 1.0 and h["self_similarity"] == 0.0 and h["vocabulary"] > 60
    assert r["generation"]["vocabulary_ratio"] == pytest.approx(5 / h["vocabulary"], abs=1e-6)


def test_subword_tokens_sum_into_words_and_punctuation_is_left_out():
    text = "Un-bee-lievable, don't!"
    spans = word_spans(text)
    assert [w for _, _, w in spans] == ["un", "bee", "lievable", "don't"]
    # byte-level BPE style pieces: a piece may carry the space or hyphen before it
    tokens = [(0, 2, None, None), (2, 6, -2.0, True), (6, 12, -1.5, False), (12, 15, -0.25, True),
              (15, 16, -3.0, False), (16, 20, -0.125, True), (20, 22, -0.25, False), (22, 23, -4.0, False)]
    words = words_from_tokens(tokens, spans)
    # "un" holds the context-less first token; "-bee" ends in "bee"; "lievable" sums "-lieva" and
    # "ble" and takes its first piece's hit; " don" + "'t" make "don't"; "," and "!" belong to no word
    assert words == [("un", None, None), ("bee", -2.0, True), ("lievable", -1.75, False), ("don't", -0.375, True)]


def test_compare_says_which_way_collapse_moves_each_metric():
    before = {"perplexity": {"all": {"tail": {"perplexity": 100.0}, "head": {"perplexity": 10.0}}},
              "tail_recall_at_k": {"tail": 0.5}, "generation": {"model": {"distinct_2": 0.9, "vocabulary": 50}},
              "settings": {"prompts": 8}, "anchor": {"documents": 10}}
    after = {"perplexity": {"all": {"tail": {"perplexity": 150.0}, "head": {"perplexity": 9.0}}},
             "tail_recall_at_k": {"tail": 0.5}, "generation": {"model": {"distinct_2": 0.8, "vocabulary": 60}},
             "settings": {"prompts": 8}, "anchor": {"documents": 10}}
    rows = {r["label"]: r for r in compare(after, before)}
    assert rows["tail perplexity"]["worse"] is True and rows["tail perplexity"]["relative"] == 0.5
    assert rows["head perplexity"]["worse"] is False
    assert rows["distinct-2"]["worse"] is True and rows["vocabulary"]["worse"] is False
    assert rows["tail recall@k"]["worse"] is False and rows["tail recall@k"]["change"] == 0
    assert rows["MSTTR"]["before"] is None and rows["MSTTR"]["worse"] is None
    assert settings_differ(after, before) == []
    assert settings_differ({**after, "settings": {"prompts": 4}}, before) == ["prompts: 8 -> 4"]


def test_result_does_not_depend_on_document_order(bands):
    probs = {w: 0.1 for w in HEAD_WORDS} | {"quillwort": 0.01}
    docs = [{"id": str(i), "text": f"the quillwort and the {'of ' * i}to", "lang": "en"} for i in range(6)]
    a = run_monitor(BagOfWords(probs, sample="the and of"), docs, prompts=3, prompt_words=2, continuation_words=2)
    b = run_monitor(BagOfWords(probs, sample="the and of"), docs[::-1], prompts=3, prompt_words=2, continuation_words=2)
    assert a == b
