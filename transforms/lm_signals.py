"""LM signals stage: a deterministic sample of records scored by a causal LM via RunInference.

Adds lm_mean_logprob, lm_fdg_curvature, lm_mean_entropy, lm_tokens and lm_error to every
record (see collapseguard.models.causal_lm for what they mean). Records outside the sample,
and records of a batch whose inference failed, keep None values (failures with a short
lm_error message): every record that goes in comes out, exactly once.
"""

from __future__ import annotations

from typing import Optional

import apache_beam as beam
from apache_beam.ml.inference.base import ModelHandler, RunInference

from collapseguard.core.hashing import salted_fraction
from collapseguard.models.causal_lm import (
    DEFAULT_MAX_TOKENS,
    DEFAULT_MODEL,
    CausalLMModelHandler,
    empty_scores,
    short_error,
)

SAMPLE_SALT = "collapseguard/lm-sample/v1"


def sample_fraction(record_id: str, salt: str = SAMPLE_SALT) -> float:
    """A stable number in [0, 1) from sha256(salt, id): the same on every runner and run."""
    return salted_fraction(salt, record_id)


def lm_selected(record: dict, sample_rate: float, salt: str = SAMPLE_SALT) -> bool:
    """True for the records the LM scores: a deterministic `sample_rate` fraction of ids."""
    return sample_rate >= 1.0 or sample_fraction(str(record.get("id")), salt) < sample_rate


def sample_partition(record: dict, num_partitions: int, sample_rate: float, salt: str) -> int:
    """beam.Partition index: 0 = score, 1 = pass through."""
    return 0 if lm_selected(record, sample_rate, salt) else 1


def not_scored(record: dict) -> dict:
    """A record outside the sample: the lm_* keys added, all None."""
    return {**record, **empty_scores()}


def records_of_failed_batch(failure) -> list[dict]:
    """RunInference dead letter (batch, (exception type, repr, traceback)) -> its records,
    each with None lm_* values and lm_error saying what failed."""
    batch, (exc_type, exc_repr, _traceback) = failure
    name = getattr(exc_type, "__name__", str(exc_type))
    message = short_error(f"inference failed: {name}: {exc_repr}")
    return [{**record, **empty_scores(error=message)} for record in batch]


class ScoreWithLM(beam.PTransform):
    """PCollection of record dicts ('id', 'text', ...) -> the same records with lm_* keys.

    Args:
      model: 'default' (embedded SmolLM2-135M-Instruct), a local folder or .gguf file, or a
        hub id already in the local Hugging Face cache (no network unless local_files_only=False).
      max_tokens: tokens of each document that are scored (its beginning).
      sample_rate: fraction in (0, 1] of records scored, chosen by sha256(salt, id).
      device: 'auto' (CUDA if present), 'cpu', 'cuda', 'cuda:N'.
      dtype: 'auto' (bf16 where native, else fp32 / fp16 on GPU), 'bf16', 'fp32', 'fp16'.
      cache_dir: where 'default' and .gguf models are converted once (default
        $COLLAPSEGUARD_CACHE or ~/.cache/collapseguard).
      token_budget: padded tokens per forward pass (default 2048 on CPU, 32768 on CUDA).
      share_across_processes: one model per machine instead of one per worker process.
      model_copies: with sharing, how many copies per machine (e.g. one per GPU).
      stats_kernel: 'auto' (fused with torch.compile, eager if that fails), 'compiled', 'eager'.
      cpu_threads: torch threads per model copy (default: all cores); with several unshared
        worker processes on one machine, cores / processes avoids oversubscription.
      embedding: also add `lm_embedding`, the mean-pooled hidden state the detector's probe
        reads (same forward pass).
      model_handler: replaces the causal-LM handler (tests, custom models); must map record
        dicts to record dicts with the lm_* keys.
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        sample_rate: float = 1.0,
        device: str = "auto",
        dtype: str = "auto",
        cache_dir: Optional[str] = None,
        token_budget: Optional[int] = None,
        share_across_processes: bool = False,
        model_copies: Optional[int] = None,
        stats_kernel: str = "auto",
        cpu_threads: Optional[int] = None,
        embedding: bool = False,
        salt: str = SAMPLE_SALT,
        model_handler: Optional[ModelHandler] = None,
        label: Optional[str] = None,
    ):
        super().__init__(label)
        if not isinstance(sample_rate, (int, float)) or not 0.0 < sample_rate <= 1.0:
            raise ValueError(f"sample_rate must be in (0, 1], got {sample_rate!r}")
        self._sample_rate = float(sample_rate)
        self._salt = salt
        # Validates every option now, while the graph is built; loads nothing.
        self._handler = model_handler or CausalLMModelHandler(
            model, max_tokens=max_tokens, device=device, dtype=dtype,
            token_budget=token_budget, cache_dir=cache_dir,
            share_across_processes=share_across_processes, model_copies=model_copies,
            stats_kernel=stats_kernel, cpu_threads=cpu_threads, embedding=embedding,
        )

    def expand(self, records):
        selected, skipped = records | "SampleForLM" >> beam.Partition(
            sample_partition, 2, self._sample_rate, self._salt
        )
        scored, errors = selected | "RunInference" >> RunInference(
            self._handler
        ).with_exception_handling()
        failed = errors.failed_inferences | "KeepFailedRecords" >> beam.FlatMap(records_of_failed_batch)
        passed = skipped | "NotSampled" >> beam.Map(not_scored)
        return (scored, failed, passed) | "MergeLMSignals" >> beam.Flatten()
