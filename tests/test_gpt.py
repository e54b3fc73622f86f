"""course_lib.gpt: equals Hugging Face's GPT-2 in float64, is causal, and generates the same
tokens with and without its KV cache."""

from __future__ import annotations

import pytest
import torch
from helpers import assert_close

import course_lib as cl
from course_lib import GPT, CharTokenizer, GPTConfig, KVCache, TransformerBlock

transformers = pytest.importorskip("transformers")

TINY = GPTConfig(vocab_size=29, context=12, d_model=12, n_heads=3, n_layers=2)


def tiny(dtype=torch.float64, seed=0, config=TINY, device="cpu"):
    torch.manual_seed(seed)
    model = GPT(config, device=device, dtype=dtype).eval()
    with torch.no_grad():  # non-zero biases and LayerNorm gains: every parameter matters
        for p in model.parameters():
            if p.dim() == 1:
                p.normal_(0.0, 0.3)
    return model


def hf_gpt2(seed=0):
    torch.manual_seed(seed)
    config = transformers.GPT2Config(
        vocab_size=37, n_positions=16, n_embd=24, n_layer=3, n_head=4,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=0,
        attn_implementation="eager",
    )
    model = transformers.GPT2LMHeadModel(config).double().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.3)  # biases and LayerNorms random, weights larger than 0.02
    return model


def test_equals_hugging_face_gpt2_in_float64():
    hf = hf_gpt2()
    ours = GPT.from_gpt2(hf).eval()
    idx = torch.randint(0, 37, (2, 16), generator=torch.Generator().manual_seed(1))
    out = hf(idx, output_attentions=True)
    assert_close(ours(idx), out.logits)
    assert_close(ours.attention_weights(idx), torch.stack(out.attentions, dim=1))
    assert ours.lm_head.weight is ours.tok_emb.weight  # tied, as GPT-2


def test_parameter_count_matches_hugging_face():
    hf = hf_gpt2()
    ours = GPT.from_gpt2(hf)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in hf.parameters())


def test_equals_a_stack_of_course_lib_blocks():
    model = tiny()
    idx = torch.randint(0, TINY.vocab_size, (3, TINY.context))
    x = model.tok_emb(idx) + model.pos_emb.embedding.weight  # (B, T, D)
    for block in model.blocks:
        x = block(x, is_causal=True)[0]
    assert_close(model(idx), model.norm(x) @ model.tok_emb.weight.T)


def test_causal_later_tokens_do_not_change_earlier_logits():
    model = tiny()
    idx = torch.randint(0, TINY.vocab_size, (2, TINY.context))
    changed = idx.clone()
    changed[:, 7:] = (changed[:, 7:] + 1) % TINY.vocab_size
    a, b = model(idx), model(changed)
    assert_close(a[:, :7], b[:, :7])
    assert (a[:, 7] - b[:, 7]).abs().max() > 1e-3  # the changed position does change


def test_cached_logits_equal_uncached_logits():
    model = tiny()
    idx = torch.randint(0, TINY.vocab_size, (2, TINY.context))
    caches = model.new_caches(2)
    steps = [model(idx[:, :5], caches=caches)]  # the prompt at once, then one at a time
    steps += [model(idx[:, t : t + 1], caches=caches) for t in range(5, TINY.context)]
    assert_close(torch.cat(steps, dim=1), model(idx))
    assert caches[0].length == TINY.context


def test_block_with_cache_equals_block_on_the_whole_sequence():
    torch.manual_seed(0)
    for norm_first in (False, True):
        block = TransformerBlock(8, 2, 16, norm_first=norm_first, dtype=torch.float64)
        x = torch.randn(2, 6, 8, dtype=torch.float64)
        cache = KVCache(2, 2, 4, 6, dtype=torch.float64)
        out = [block(x[:, :3], is_causal=True, cache=cache)[0]]
        out += [block(x[:, t : t + 1], is_causal=True, cache=cache)[0] for t in range(3, 6)]
        full, weights = block(x, is_causal=True, need_weights=True)
        assert_close(torch.cat(out, dim=1), full)
        cache.reset()
        block(x[:, :4], is_causal=True, cache=cache)
        _, w_last = block(x[:, 4:], is_causal=True, cache=cache, need_weights=True)
        assert_close(w_last, weights[:, :, 4:])  # (B, H, 2, 6): lower-right aligned


@pytest.mark.parametrize(
    "kw", [{"temperature": 0.0}, {"top_k": 1}, {"temperature": 0.8}, {"top_k": 5}]
)
def test_cached_generation_equals_uncached(kw):
    model = tiny()
    prompt = torch.randint(0, TINY.vocab_size, (3, 4), generator=torch.Generator().manual_seed(2))
    n = 2 * TINY.context  # past the context: the window slides
    runs = [
        model.generate(prompt, n, generator=torch.Generator().manual_seed(3), use_cache=c, **kw)
        for c in (True, False)
    ]
    assert runs[0].shape == (3, 4 + n)
    assert torch.equal(runs[0], runs[1])
    assert torch.equal(runs[0][:, :4], prompt)


def test_greedy_generation_follows_the_argmax():
    model = tiny()
    out = model.generate(torch.zeros(1, 1, dtype=torch.long), 5, temperature=0.0)
    for t in range(1, 6):
        assert out[0, t] == model(out[:, :t])[0, -1].argmax()


def test_sampling_is_reproducible_and_top_k_restricts():
    model = tiny()
    prompt = torch.zeros(2, 1, dtype=torch.long)
    a, b = (model.generate(prompt, 8, generator=torch.Generator().manual_seed(5)) for _ in "ab")
    assert torch.equal(a, b)
    logits = torch.tensor([[0.0, 3.0, 2.0, -1.0]]).repeat(200, 1)
    draws = cl.sample_next(logits, top_k=2, generator=torch.Generator().manual_seed(0))
    assert set(draws.flatten().tolist()) == {1, 2}


def test_gradcheck_tiny_model():
    config = GPTConfig(vocab_size=7, context=5, d_model=4, n_heads=2, n_layers=1)
    model = tiny(config=config)
    idx = torch.tensor([[1, 3, 0, 6, 2]])
    names = [n for n, _ in model.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_() for p in model.parameters())

    def logits(*ps):
        return torch.func.functional_call(model, dict(zip(names, ps, strict=True)), (idx,))

    assert torch.autograd.gradcheck(logits, params, fast_mode=True)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_device_and_dtype_kept(dtype, device):
    model = tiny(dtype=dtype, device=device)
    idx = torch.randint(0, TINY.vocab_size, (2, 6), device=device)
    logits = model(idx)
    assert logits.dtype == dtype and logits.device.type == torch.device(device).type
    caches = model.new_caches(2)
    assert caches[0].keys_buffer.dtype == dtype
    out = model.generate(idx, 3)
    assert out.device.type == torch.device(device).type and out.dtype == idx.dtype


def test_meta_device_gives_shapes_and_parameter_count():
    config = GPTConfig(vocab_size=50257, context=1024, d_model=768, n_heads=12, n_layers=12)
    model = GPT(config, device="meta")
    n = sum(p.numel() for p in model.parameters())
    assert n == 124_439_808  # GPT-2 small as Hugging Face counts it (tied head counted once)
    logits = model(torch.zeros(2, 10, dtype=torch.long, device="meta"))
    assert logits.shape == (2, 10, 50257)


def test_clear_errors():
    model = tiny()
    long_prompt = torch.zeros(1, TINY.context + 1, dtype=torch.long)
    with pytest.raises(ValueError, match="more than the context"):
        model.generate(long_prompt, 1)
    with pytest.raises(ValueError, match="do not fit the context"):
        model(long_prompt)
    with pytest.raises(ValueError, match="integer token ids"):
        model(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="top_k"):
        model.generate(torch.zeros(1, 1, dtype=torch.long), 1, top_k=0)
    with pytest.raises(ValueError, match="temperature"):
        model.generate(torch.zeros(1, 1, dtype=torch.long), 1, temperature=-1.0)
    caches = model.new_caches(1)
    model(torch.zeros(1, TINY.context, dtype=torch.long), caches=caches)
    with pytest.raises(ValueError, match="12 cached"):
        model(torch.zeros(1, 1, dtype=torch.long), caches=caches)
    with pytest.raises(ValueError, match="self-attention while decoding"):
        model.blocks[0].self_attn(
            torch.zeros(1, 1, 12, dtype=torch.float64), attn_mask=torch.ones(1, 1, dtype=bool),
            cache=model.new_caches(1)[0],
        )


def test_char_tokenizer_round_trip_and_errors():
    tok = CharTokenizer("to be, or not to be")
    assert tok.vocab_size == len(set("to be, or not to be"))
    assert tok.decode(tok.encode("be not")) == "be not"
    assert tok.decode(torch.tensor(tok.encode("or"))) == "or"
    with pytest.raises(ValueError, match=r"\['x'\]"):
        tok.encode("xo")
    with pytest.raises(ValueError, match="ids must be"):
        tok.decode([tok.vocab_size])
