"""Causal-LM scorer: the statistics against naive formulas, batching, device/dtype choice,
the offline model cache, and the real embedded model against an independent reference."""

from __future__ import annotations

import math
import pickle
import random
import threading
import time

import pytest
import torch

from collapseguard.models.causal_lm import (
    LM_COLUMNS,
    LM_EMBEDDING,
    CausalLMModelHandler,
    CausalLMScorer,
    LMConfig,
    select_moments,
    approx_tokens,
    embedding_layer,
    mean_pool,
    chunk_bounds,
    materialize_once,
    plan_batches,
    resolve_model_source,
    select_device,
    select_dtype,
    sequence_statistics,
    softmax_moments,
    summarize,
)

PARAGRAPHS = [
    "The ferry left the harbour an hour late because the wind had turned during the night. "
    "Most passengers stayed inside, drinking tea and watching the grey water slide past the windows.",
    "My grandmother kept her recipes in a shoebox under the stairs. None of them listed exact "
    "quantities, only notes such as a handful of flour or enough milk to make it soft.",
    "The council has agreed to repair the old footbridge over the river before the summer. "
    "Work is expected to take six weeks, and a temporary crossing will be built downstream.",
    "Bees communicate the location of flowers through a dance performed inside the hive. The "
    "angle of the dance shows the direction, and its length tells the others how far to fly.",
    "After the match the coach said he was proud of the young players, who had never faced a "
    "crowd that size. He added that the team still needed to improve its defending at set pieces.",
    "The museum reopened on Saturday after a long renovation that replaced the roof and the "
    "heating. Visitors queued around the block to see the restored paintings in the main hall.",
    "Rain fell steadily all afternoon, and by evening the lane behind the farm had turned to mud. "
    "The children came home soaked, their boots heavy and their pockets full of smooth stones.",
    "Engineers tested the new train on a closed stretch of track for three months before it "
    "carried passengers. The company says it uses a third less energy than the model it replaces.",
]


def shuffled(text: str, seed: int) -> str:
    words = text.split()
    random.Random(seed).shuffle(words)
    return " ".join(words)


def corpus() -> list[str]:
    """32 short documents with a wide spread of scores: originals, shuffles, halves."""
    docs = []
    for i, p in enumerate(PARAGRAPHS):
        half = " ".join(p.split()[: len(p.split()) // 2])
        docs += [p, shuffled(p, i), half, shuffled(half, 100 + i)]
    return docs


# ----------------------------------------------------------------- naive reference formulas


def naive_sums(logits: torch.Tensor, labels: list[int]) -> tuple[float, float, float]:
    """sum log p(x_t), sum mu_t, sum var_t by explicit loops over a full softmax (float64)."""
    s_lp = s_mu = s_var = 0.0
    for t, label in enumerate(labels):
        row = [float(v) for v in logits[t]]
        top = max(row)
        log_z = top + math.log(sum(math.exp(v - top) for v in row))
        logp = [v - log_z for v in row]
        p = [math.exp(v) for v in logp]
        mu = sum(pi * li for pi, li in zip(p, logp))
        s_lp += logp[label]
        s_mu += mu
        s_var += sum(pi * li * li for pi, li in zip(p, logp)) - mu * mu
    return s_lp, s_mu, s_var


def fast_detect_gpt_reference(model, tokenizer, text: str, max_tokens: int) -> dict:
    """Straight per-document code in the style of the public Fast-DetectGPT script
    (batch of one, full log_softmax over the vocabulary, float32)."""
    ids = tokenizer(text, return_tensors="pt").input_ids[:, :max_tokens]
    with torch.no_grad():
        logits = model(ids).logits[:, :-1].float()
    labels = ids[:, 1:].unsqueeze(-1)
    lprobs = torch.log_softmax(logits, dim=-1)
    probs = torch.softmax(logits, dim=-1)
    log_likelihood = lprobs.gather(dim=-1, index=labels).squeeze(-1)
    mean_ref = (probs * lprobs).sum(dim=-1)
    var_ref = (probs * torch.square(lprobs)).sum(dim=-1) - torch.square(mean_ref)
    curvature = (log_likelihood.sum(-1) - mean_ref.sum(-1)) / var_ref.sum(-1).sqrt()
    return {"lm_mean_logprob": log_likelihood.mean().item(),
            "lm_fdg_curvature": curvature.item(),
            "lm_mean_entropy": -mean_ref.mean().item()}


def spearman(a: list[float], b: list[float]) -> float:
    def ranks(x):
        order = sorted(range(len(x)), key=lambda i: x[i])
        r = [0.0] * len(x)
        for rank, i in enumerate(order):
            r[i] = float(rank)
        return r

    ra, rb = ranks(a), ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    return cov / math.sqrt(sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb))


# ----------------------------------------------------------------- pure functions


def test_a_hub_id_counts_only_when_the_local_cache_holds_it(tmp_path):
    """`in_hub_cache` finds a model in a Hugging Face cache laid out as the hub client writes it
    (models--org--name/refs/main -> snapshots/<rev>/config.json), offline; an id it does not
    hold, or one that is not a valid id, is not there."""
    from collapseguard.models.causal_lm import in_hub_cache

    repo = tmp_path / "models--some-org--tiny-lm"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    snap = repo / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text("{}")
    assert in_hub_cache("some-org/tiny-lm", cache_dir=str(tmp_path))
    assert not in_hub_cache("some-org/other-lm", cache_dir=str(tmp_path))
    assert not in_hub_cache("not a valid//id", cache_dir=str(tmp_path))


def test_select_device_prefers_cuda_when_present():
    assert select_device("auto", cuda_available=True) == "cuda"
    assert select_device("auto", cuda_available=False) == "cpu"
    assert select_device("cpu", cuda_available=True) == "cpu"
    assert select_device("CUDA:1", cuda_available=False) == "cuda:1"
    with pytest.raises(ValueError, match="unknown device"):
        select_device("gpu0")


def test_select_dtype_uses_bf16_only_where_native():
    assert select_dtype("auto", "cpu", bf16_supported=True) == "bfloat16"
    assert select_dtype("auto", "cpu", bf16_supported=False) == "float32"
    assert select_dtype("auto", "cuda", bf16_supported=False) == "float16"
    assert select_dtype("fp32", "cuda", bf16_supported=True) == "float32"
    with pytest.raises(ValueError, match="unknown dtype"):
        select_dtype("int8")


def test_chunks_cover_everything_and_never_leave_a_single_row():
    for n in range(2, 40):
        for chunk in (2, 3, 5, 8):
            bounds = chunk_bounds(n, chunk)
            assert bounds[0][0] == 0 and bounds[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
            assert all(e - s >= 2 for s, e in bounds)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_statistics_equal_the_explicit_formula(dtype):
    torch.manual_seed(0)
    b, t, v = 3, 9, 13
    logits = (torch.randn(b, t, v) * 4).to(dtype)
    labels = torch.randint(0, v, (b, t))
    lengths = [9, 5, 1]  # right-padded rows; the last scores a single position
    mask = torch.tensor([[i < n for i in range(t)] for n in lengths])
    sums = sequence_statistics(logits, labels, mask, chunk=4)
    for row, n in enumerate(lengths):
        s_lp, s_mu, s_var = naive_sums(logits[row, :n].double(), labels[row, :n].tolist())
        assert int(sums["n"][row]) == n
        assert sums["sum_logprob"][row].item() == pytest.approx(s_lp, rel=1e-5, abs=1e-4)
        assert sums["sum_mu"][row].item() == pytest.approx(s_mu, rel=1e-5, abs=1e-4)
        assert sums["sum_var"][row].item() == pytest.approx(s_var, rel=1e-4, abs=1e-4)
        out = summarize(n, s_lp, s_mu, s_var)
        assert out["lm_fdg_curvature"] == pytest.approx((s_lp - s_mu) / math.sqrt(s_var))
        assert out["lm_mean_entropy"] == pytest.approx(-s_mu / n)


def test_documents_under_two_tokens_get_nulls():
    out = summarize(0, 0.0, 0.0, 0.0)
    assert out["lm_tokens"] == 0 and out["lm_error"] is None
    assert out["lm_mean_logprob"] is None and out["lm_fdg_curvature"] is None
    assert set(out) == set(LM_COLUMNS)


def test_plan_batches_sorts_by_length_and_respects_the_budget():
    lengths = [5, 300, 40, 41, 7, 600, 39, 6]
    plan = plan_batches(lengths, token_budget=128)
    assert sorted(i for group in plan for i in group) == list(range(len(lengths)))
    assert plan[0] == [5]  # longer than the budget: alone
    for group in plan:
        assert len(group) == 1 or len(group) * max(lengths[i] for i in group) <= 128
        assert [lengths[i] for i in group] == sorted((lengths[i] for i in group), reverse=True)
    # a step in length starts a new pass rather than padding fifty short rows to 100 tokens
    mixed = [100] * 5 + [10] * 50
    plan = plan_batches(mixed, token_budget=4096)
    padded = sum(len(g) * max(mixed[i] for i in g) for g in plan)
    assert padded == sum(mixed) and len(plan) == 2
    assert approx_tokens({"text": "x" * 4000}, max_tokens=512) == 512
    assert approx_tokens({"text": None}) == approx_tokens({"text": "Hi"}) == 16


def test_config_validates_options_when_built():
    with pytest.raises(ValueError, match="max_tokens"):
        LMConfig(max_tokens=1)
    with pytest.raises(ValueError, match="token_budget"):
        LMConfig(max_tokens=512, token_budget=100)
    with pytest.raises(ValueError, match="stats_kernel"):
        LMConfig(stats_kernel="fused")
    with pytest.raises(ValueError, match="cpu_threads"):
        LMConfig(cpu_threads=0)
    with pytest.raises(ValueError, match="unknown dtype"):
        CausalLMModelHandler(dtype="bf61")


def test_handler_loads_nothing_when_built_and_pickles():
    handler = CausalLMModelHandler("/nonexistent/model", share_across_processes=True, model_copies=2)
    clone = pickle.loads(pickle.dumps(handler))
    assert clone.config.model == "/nonexistent/model"
    assert clone.share_model_across_processes() and clone.model_copies() == 2
    kwargs = clone.batch_elements_kwargs()
    assert kwargs["min_batch_size"] == kwargs["max_batch_size"] >= 512
    assert kwargs["element_size_fn"]({"text": "abcd" * 100}) == 101
    assert not CausalLMModelHandler().share_model_across_processes()


def test_model_folder_is_built_once_under_concurrent_starts(tmp_path):
    calls = []

    def build(folder):
        calls.append(folder)
        time.sleep(0.2)
        (tmp_path / "unused").write_text("")
        with open(f"{folder}/config.json", "w") as f:
            f.write("{}")

    final = str(tmp_path / "models" / "tiny")
    results = []
    threads = [threading.Thread(target=lambda: results.append(materialize_once(final, build)))
               for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert results == [final] * 4 and len(calls) == 1
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["tiny", "tiny.lock"]
    assert resolve_model_source("some-org/some-model", str(tmp_path)) == "some-org/some-model"


# ----------------------------------------------------------------- a tiny random model


@pytest.fixture(scope="module")
def tiny_model():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    return LlamaForCausalLM(config).eval()


def test_tiny_model_scores_equal_naive_loops_batched_or_not(tiny_model):
    rng = random.Random(1)
    docs = [[rng.randrange(97) for _ in range(n)] for n in (17, 3, 2, 1, 0, 30, 9)]
    batched = CausalLMScorer(tiny_model, None, max_tokens=24, token_budget=64, stats_kernel="eager")
    out = batched.score_token_ids(docs)
    assert out["batches"] >= 2 and out["real_tokens"] == sum(min(len(d), 24) for d in docs if len(d) >= 2)
    for doc, got in zip(docs, out["scores"]):
        doc = doc[:24]
        alone = batched.score_token_ids([doc])["scores"][0]
        if len(doc) < 2:
            assert got["lm_tokens"] == 0 and got["lm_mean_logprob"] is None
            continue
        with torch.no_grad():
            logits = tiny_model(torch.tensor([doc])).logits[0, :-1].double()
        s_lp, s_mu, s_var = naive_sums(logits, doc[1:])
        n = len(doc) - 1
        assert got["lm_tokens"] == n
        assert got["lm_mean_logprob"] == pytest.approx(s_lp / n, abs=1e-5)
        assert got["lm_mean_entropy"] == pytest.approx(-s_mu / n, abs=1e-5)
        assert got["lm_fdg_curvature"] == pytest.approx((s_lp - s_mu) / math.sqrt(s_var), abs=1e-4)
        for key in ("lm_mean_logprob", "lm_fdg_curvature", "lm_mean_entropy"):
            assert alone[key] == pytest.approx(got[key], abs=1e-5)


def test_mean_pool_ignores_padding_and_computes_in_float32():
    hidden = torch.arange(2 * 4 * 3, dtype=torch.float32).reshape(2, 4, 3).to(torch.bfloat16)
    hidden[1, 2:] = 1e4  # padding of the second row: must not count
    got = mean_pool(hidden, torch.tensor([4, 2]))
    assert got.dtype == torch.float32
    torch.testing.assert_close(got[0], hidden[0].float().mean(0))
    torch.testing.assert_close(got[1], hidden[1, :2].float().mean(0))


def test_embedding_layer_sits_at_sixty_percent_depth():
    class Cfg:
        def __init__(self, n):
            self.num_hidden_layers = n

    assert embedding_layer(Cfg(30)) == 18 and embedding_layer(Cfg(2)) == 1 and embedding_layer(Cfg(1)) == 1


def test_tiny_model_embedding_is_the_mean_hidden_state_batched_or_not(tiny_model):
    rng = random.Random(2)
    docs = [[rng.randrange(97) for _ in range(n)] for n in (17, 1, 30, 5)]
    scorer = CausalLMScorer(tiny_model, None, max_tokens=24, token_budget=64, stats_kernel="eager", embedding=True)
    assert scorer.describe()["embedding_layer"] == 1
    got = scorer.score_token_ids(docs)["scores"]
    assert got[1][LM_EMBEDDING] is None  # under two tokens: nothing scored
    for doc, g in zip(docs, got):
        if len(doc) < 2:
            continue
        with torch.no_grad():
            states = tiny_model(torch.tensor([doc[:24]]), output_hidden_states=True).hidden_states[1][0]
        assert len(g[LM_EMBEDDING]) == 32
        torch.testing.assert_close(torch.tensor(g[LM_EMBEDDING]), states.float().mean(0), rtol=1e-4, atol=1e-5)
    plain = CausalLMScorer(tiny_model, None, max_tokens=24, token_budget=64, stats_kernel="eager")
    assert LM_EMBEDDING not in plain.score_token_ids(docs)["scores"][0]


def test_compiled_kernel_equals_eager(tiny_model):
    moments = select_moments("compiled", tiny_model)
    assert getattr(moments, "kind", None) == "compiled"
    with torch.inference_mode():  # as in scoring: inference tensors (else dynamo recompiles)
        z = torch.randn(37, 97) * 5
        for a, b in zip(moments(z), softmax_moments(z)):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------- the real embedded model


@pytest.fixture(scope="module")
def scorer():
    return CausalLMScorer.load(LMConfig(max_tokens=128))


@pytest.mark.slow
def test_human_text_is_more_likely_than_its_shuffled_words(scorer):
    out = scorer.score_texts(PARAGRAPHS[:4] + [shuffled(p, i) for i, p in enumerate(PARAGRAPHS[:4])])
    scores = out["scores"]
    # bf16 where this CPU computes it natively (AVX512-BF16/AMX), else float32: machines differ
    assert scorer.describe()["dtype"] == select_dtype("auto", "cpu")
    for human, mixed in zip(scores[:4], scores[4:]):
        assert human["lm_mean_logprob"] > mixed["lm_mean_logprob"] + 1.0
        assert 0 < human["lm_mean_entropy"] < 11  # below log(vocabulary) = 10.8 nats


# Batching pads shorter documents; masking must make that invisible. In float32 a document's
# scores are the same alone or in a batch to ~1e-5 (measured 3e-6), which is what proves the
# masking. bfloat16 keeps 8 bits of mantissa and the padded batch changes the kernels' blocking,
# so the same document moves by rounding alone: measured up to 0.021 (mean log-prob), 0.018
# (entropy) and 0.048 (curvature) on a CPU with AMX, hence the looser bound there.
BATCH_TOLERANCE = {"fp32": (1e-4, 1e-3), "bf16": (0.05, 0.15)}


@pytest.fixture(scope="module", params=sorted(BATCH_TOLERANCE))
def dtype_scorer(request):
    return request.param, CausalLMScorer.load(LMConfig(max_tokens=128, dtype=request.param))


@pytest.mark.slow
def test_batched_scores_equal_unbatched(dtype_scorer):
    dtype, scorer = dtype_scorer
    tol, tol_curvature = BATCH_TOLERANCE[dtype]
    docs = corpus()[:8] + ["", "Hi"]
    together = scorer.score_texts(docs)["scores"]
    for doc, got in zip(docs, together):
        alone = scorer.score_texts([doc])["scores"][0]
        assert got["lm_tokens"] == alone["lm_tokens"]
        for key in ("lm_mean_logprob", "lm_mean_entropy"):
            if alone[key] is None:
                assert got[key] is None
            else:
                assert got[key] == pytest.approx(alone[key], abs=tol)
        if alone["lm_fdg_curvature"] is not None:
            assert got["lm_fdg_curvature"] == pytest.approx(alone["lm_fdg_curvature"], abs=tol_curvature)


@pytest.mark.slow
def test_agrees_with_an_independent_fp32_reference(scorer):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = resolve_model_source("default")
    reference_model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    docs = corpus()[:24]
    ours = scorer.score_texts(docs)["scores"]
    theirs = [fast_detect_gpt_reference(reference_model, tokenizer, d, 128) for d in docs]
    for key in ("lm_mean_logprob", "lm_fdg_curvature", "lm_mean_entropy"):
        rho = spearman([o[key] for o in ours], [t[key] for t in theirs])
        assert rho >= 0.99, (key, rho)
    # bf16 weights move each value a little, never far
    for o, t in zip(ours, theirs):
        assert o["lm_mean_logprob"] == pytest.approx(t["lm_mean_logprob"], abs=0.15)


@pytest.mark.slow
def test_handler_adds_lm_fields_and_keeps_bad_records(scorer):
    handler = CausalLMModelHandler(max_tokens=128)
    batch = [{"id": "a", "text": PARAGRAPHS[0], "source": "x"},
             {"id": "b", "text": None},
             {"id": "c", "text": "."}]
    out = handler.run_inference(batch, scorer)
    assert [r["id"] for r in out] == ["a", "b", "c"] and out[0]["source"] == "x"
    assert all(set(LM_COLUMNS) <= set(r) for r in out)
    assert out[0]["lm_tokens"] > 10 and out[0]["lm_error"] is None
    assert out[1]["lm_error"] and out[1]["lm_mean_logprob"] is None
    assert out[2]["lm_tokens"] == 0 and out[2]["lm_error"] is None
    assert batch[0].keys() == {"id", "text", "source"}  # inputs are not mutated
