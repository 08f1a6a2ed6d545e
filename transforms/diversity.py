"""Lexical diversity per stratum, the model-collapse literature's measures, on a bounded sample.

Text from recursively trained models loses diversity (Shumailov et al., Nature 2024; Guo et al.,
"The Curious Decline of Linguistic Diversity: Training Language Models on Synthetic Text",
2024), so each stratum reports:

- ttr_w100: type-token ratio averaged over fixed, non-overlapping 100-token windows of each
  sampled document (mean segmental TTR), so it does not just measure length.
- distinct_2, distinct_3: distinct word n-grams / total n-grams (Li et al., NAACL 2016) over the
  first `token_budget` tokens of the sample (n-grams never cross documents). Distinct-n falls
  as the count grows, so a fixed budget keeps strata comparable; a stratum with fewer tokens
  than the budget reads higher (tokens_sampled says so).
- self_similarity: a Self-BLEU equivalent (Zhu et al., "Texygen", SIGIR 2018). Self-BLEU scores
  each document by BLEU against all other documents as references; with many references BLEU's
  clipped n-gram precision is close to "the share of the document's n-grams found in some other
  document". We compute exactly that for word 4-grams, on distinct 4-grams, averaged over the
  sampled documents: one document-frequency map, O(total 4-grams) instead of O(K^2) BLEU calls,
  exact and deterministic (MinHash would add variance and still need K^2 pair comparisons).
  0 = no 4-gram shared between documents; 1 = every 4-gram is also elsewhere (templated text).
  It depends on the number of documents compared (docs_sampled), like Self-BLEU.

Sample: the `max_docs` documents with the smallest sha256(salt, id) (a uniform random sample
that any runner and merge order reproduce), each cut to its first `max_doc_tokens` tokens, so
the accumulator is bounded whatever the corpus size.
"""

from __future__ import annotations

from typing import Sequence

import apache_beam as beam

from collapseguard.core.hashing import salted_int
from collapseguard.core.text import budget_prefix, distinct_n, self_similarity, tokenize, ttr_windows

DIVERSITY_SALT = "collapseguard/diversity-sample/v1"
_CHARS_PER_TOKEN = 24  # prefix read per document: bounds the tokenizer's cost on huge texts


def diversity_metrics(docs: Sequence[Sequence[str]], token_budget: int = 20_000, window: int = 100) -> dict:
    """All metrics of one stratum's sample (documents in sample order)."""
    head = budget_prefix(docs, token_budget)

    def r(x):
        return None if x is None else round(x, 6)

    return {
        f"ttr_w{window}": r(ttr_windows(docs, window)),
        "distinct_2": r(distinct_n(head, 2)),
        "distinct_3": r(distinct_n(head, 3)),
        "self_similarity": r(self_similarity(docs, 4)),
        "docs_sampled": len(docs),
        "tokens_sampled": sum(map(len, head)),
    }


def sample_key(doc_id: str, salt: str = DIVERSITY_SALT) -> int:
    return salted_int(salt, doc_id)


class DiversityStats(beam.CombineFn):
    """Per stratum (use with CombinePerKey): values (id, text) or records with "id" and "text".

    Output: {ttr_w100, distinct_2, distinct_3, self_similarity, docs_sampled, tokens_sampled,
    docs_seen}. The accumulator keeps at most `max_docs` documents (the smallest keys
    (sha256(salt, id), id, tokens)) of at most `max_doc_tokens` tokens: bounded, and the kept set
    is the same for any merge order. Documents whose key cannot enter the sample are not
    tokenized.
    """

    def __init__(self, max_docs: int = 500, max_doc_tokens: int = 400, token_budget: int = 20_000,
                 window: int = 100, salt: str = DIVERSITY_SALT):
        self._max_docs = max_docs
        self._max_doc_tokens = max_doc_tokens
        self._token_budget = token_budget
        self._window = window
        self._salt = salt

    def create_accumulator(self):
        return {"seen": 0, "docs": [], "cut": None}

    def _prune(self, acc):
        docs = acc["docs"]
        if len(docs) >= self._max_docs:
            docs.sort()
            del docs[self._max_docs:]
            acc["cut"] = docs[-1][:2]
        return acc

    def add_input(self, acc, element):
        if isinstance(element, dict):
            doc_id, text = element.get("id"), element.get("text")
        else:
            doc_id, text = element
        acc["seen"] += 1
        key = (sample_key(str(doc_id), self._salt), str(doc_id))
        if acc["cut"] is not None and key > acc["cut"]:
            return acc  # can never be among the max_docs smallest

        tokens = tokenize((text or "")[: self._max_doc_tokens * _CHARS_PER_TOKEN])[: self._max_doc_tokens]
        acc["docs"].append(key + (tuple(tokens),))
        if len(acc["docs"]) >= 2 * self._max_docs:
            self._prune(acc)
        return acc

    def merge_accumulators(self, accs):
        out = self.create_accumulator()
        for a in accs:
            out["seen"] += a["seen"]
            out["docs"].extend(a["docs"])
            if len(out["docs"]) >= 2 * self._max_docs:
                self._prune(out)
        return self._prune(out)

    def compact(self, acc):
        return self._prune(acc)

    def extract_output(self, acc):
        docs = [d[2] for d in sorted(acc["docs"])[: self._max_docs]]
        out = diversity_metrics(docs, self._token_budget, self._window)
        out["docs_seen"] = acc["seen"]
        return out
