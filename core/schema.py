"""The output contract: strata and provenance names, scorer versions, and the explicit Arrow
schema of every stratum file. The bottom layer: it imports nothing of ours.

The schema is declared here once, never inferred from data (an all-null column in the first
batch must not change a column's type, and a write must not fail after hours of work).
"""

from __future__ import annotations

import pyarrow as pa

# Strata in the order the manifest and report list them. `review` holds documents of shards
# that failed the entropy audit; `rejected` (JSONL, not Parquet) holds unusable input.
TRAINING_STRATA = ("human_verified", "human_unverified", "synthetic_known", "synthetic_suspected")
STRATA = ("anchor",) + TRAINING_STRATA
REVIEW = "review"
REJECTED = "rejected"
ALL_OUTPUTS = STRATA + (REVIEW,)

# How strata weigh in training (transforms/weights.py): human strata by rarity, synthetic ones by
# one run-wide weight under the ceiling, the anchor and review never.
HUMAN_STRATA = ("human_verified", "human_unverified")
SYNTHETIC_STRATA = ("synthetic_known", "synthetic_suspected")
ZERO_WEIGHT_STRATA = ("anchor", "review")

PROVENANCE_LABELS = ("verified_human", "unverified_human", "known_synthetic", "suspected_synthetic")
# Where a provenance label sends a document (before the anchor sample and the entropy hold).
BASE_STRATUM = dict(zip(PROVENANCE_LABELS, ("human_verified", "human_unverified", "synthetic_known",
                                            "synthetic_suspected")))

WEIGHT_VERSION = "rare_density_quantile_ramp_v2"  # recorded next to the column (dolma's habit)

# Version of each scorer, recorded in the manifest so a corpus says which code made which
# number (dolma's versioned-scorer habit; column names stay the stable contract).
SIGNAL_VERSIONS = {
    "lang": "fasttext_lid176_v1",
    "n_words": "whitespace_split_v1",
    "ttr": "ttr_fixed_window_v1",
    "burstiness": "sentence_length_cv_v1",
    "token_entropy_bits": "unigram_entropy_miller_madow_window_v1",
    "repetition": "dup_word_ngram_fraction_v1",
    "rare_word_fraction": "wordfreq_zipf_below_threshold_types_v1",
    "rare_word_density": "wordfreq_zipf_below_threshold_types_per_token_v1",
    "sample_weight": WEIGHT_VERSION,
    "lm_*": "causal_lm_fdg_analytic_v1",
    "lm_embedding": "mean_pooled_hidden_state_v1",
    "clf_p_synthetic": "fasttext_supervised_words_punct_v1",
    "lm_probe_logit": "logistic_probe_on_lm_embedding_v1",
    "p_synthetic": "logistic_regression_calibrated_v1",
}

_str = pa.string()
_f64 = pa.float64()
_list_str = pa.list_(pa.string())

OUTPUT_SCHEMA = pa.schema(
    [
        pa.field("id", _str, nullable=False),
        pa.field("shard", _str, nullable=False),
        pa.field("line", pa.int64(), nullable=False),
        pa.field("text", _str, nullable=False),
        pa.field("source", _str),
        pa.field("url", _str),
        pa.field("timestamp", pa.timestamp("us", tz="UTC")),
        pa.field("generator", _str),
        pa.field("metadata", _str),  # the input's metadata object, as canonical JSON
        pa.field("input_warnings", _list_str),
        pa.field("is_duplicate_id", pa.bool_()),
        # cheap signals
        pa.field("lang", _str),
        pa.field("lang_score", _f64),
        pa.field("n_chars", pa.int64()),
        pa.field("n_words", pa.int64()),
        pa.field("ttr", _f64),
        pa.field("burstiness", _f64),
        pa.field("token_entropy_bits", _f64),
        pa.field("repetition", _f64),
        pa.field("rare_word_fraction", _f64),
        pa.field("rare_word_density", _f64),
        # LM signals (models/causal_lm.py; null when not scored)
        pa.field("lm_mean_logprob", _f64),
        pa.field("lm_fdg_curvature", _f64),
        pa.field("lm_mean_entropy", _f64),
        pa.field("lm_tokens", pa.int64()),
        pa.field("lm_error", _str),
        # the mean-pooled hidden state the detector's probe reads: null unless the run was asked
        # to write it (--write-lm-embedding, as `calibrate` does); 576 float32 for the default model
        pa.field("lm_embedding", pa.list_(pa.float32())),
        # detector (models/detector.py; null without one)
        pa.field("clf_p_synthetic", _f64),
        pa.field("lm_probe_logit", _f64),  # the hidden-state probe's log-odds of synthetic
        pa.field("p_synthetic", _f64),
        # decisions
        pa.field("provenance", _str, nullable=False),
        pa.field("provenance_reasons", _list_str),
        pa.field("stratum", _str, nullable=False),
        pa.field("hold_reasons", _list_str),
        pa.field("sample_weight", _f64),  # 0 for anchor and review; see transforms/weights.py
    ]
)

OUTPUT_COLUMNS = tuple(OUTPUT_SCHEMA.names)


def to_table(rows: list[dict]) -> pa.Table:
    """Builds a table of OUTPUT_SCHEMA from record dicts (extra keys are ignored)."""
    columns = {name: [r.get(name) for r in rows] for name in OUTPUT_COLUMNS}
    return pa.Table.from_pydict(columns, schema=OUTPUT_SCHEMA)
