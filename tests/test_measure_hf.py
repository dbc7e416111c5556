"""``pnc.measure`` with default arguments on HuggingFace ``transformers`` models (tiny random configurations).

Four families: an encoder (BERT), two decoders (GPT-2, Llama) and a vision transformer (ViT). The rows are checked
against the model's own ``output_hidden_states``, pooled in the test from the definition (the class token for
encoders, the last real token for decoders, real tokens only); padding must not change a single number. Models run
in float64, so tables agree to 1e-10.
"""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

import pnc

transformers = pytest.importorskip("transformers")

N, T, K, VOCAB, PAD = 24, 9, 3, 99, 0
TOL = dict(rtol=1e-10, atol=1e-10)


def _tiny(family: str) -> torch.nn.Module:
    """A tiny random model of ``family`` in float64 and eval mode (no weights are downloaded)."""
    small = dict(num_hidden_layers=2, num_attention_heads=2, intermediate_size=37, num_labels=K)
    if family == "bert":
        cfg = transformers.BertConfig(hidden_size=32, vocab_size=VOCAB, pad_token_id=PAD, **small)
        model = transformers.BertForSequenceClassification(cfg)
    elif family == "gpt2":
        cfg = transformers.GPT2Config(n_embd=32, n_layer=2, n_head=2, n_positions=64, vocab_size=VOCAB,
                                      pad_token_id=PAD, bos_token_id=1, eos_token_id=2, num_labels=K)
        model = transformers.GPT2ForSequenceClassification(cfg)
    elif family == "llama":
        cfg = transformers.LlamaConfig(hidden_size=32, num_key_value_heads=2, vocab_size=VOCAB, pad_token_id=PAD,
                                       bos_token_id=1, eos_token_id=2, **small)
        model = transformers.LlamaForSequenceClassification(cfg)
    else:
        cfg = transformers.ViTConfig(hidden_size=32, image_size=16, patch_size=4, num_channels=3, **small)
        model = transformers.ViTForImageClassification(cfg)
    return model.double().eval()


# rows whose features are the model's own hidden_states[i]; GPT-2 and Llama apply the final norm to the last one
HIDDEN = {
    "bert": {"bert.embeddings": 0, "bert.encoder.layer.0": 1, "bert.encoder.layer.1": 2},
    "gpt2": {"transformer.drop": 0, "transformer.h.0": 1, "transformer.ln_f": 2},
    "llama": {"model.embed_tokens": 0, "model.layers.0": 1, "model.norm": 2},
    "vit": {"vit.embeddings": 0, "vit.layers.0": 1, "vit.layers.1": 2},
}
SKIPPED = {"gpt2": "transformer.wpe: output not per-sample", "llama": "model.rotary_emb: output not per-sample"}


def _data(family: str, extra_padding: int = 0) -> tuple[list[tuple[dict, torch.Tensor]], np.ndarray]:
    """Three batches of 8 and the real length of each sample; token sequences of varied lengths, right-padded."""
    g = torch.Generator().manual_seed(7)
    y = torch.arange(N) % K
    if family == "vit":
        pixels = torch.randn(N, 3, 16, 16, generator=g, dtype=torch.float64) + y.double().view(-1, 1, 1, 1)
        return [({"pixel_values": pixels[i:i + 8]}, y[i:i + 8]) for i in range(0, N, 8)], np.full(N, 17)
    lengths = 4 + torch.randint(0, T - 3, (N,), generator=g)
    ids = torch.randint(3, VOCAB, (N, T), generator=g)
    ids[:, 0] = 3 + y  # the first token tells the class a little
    ids = torch.cat([ids, torch.full((N, extra_padding), PAD)], dim=1)
    mask = (torch.arange(T + extra_padding) < lengths[:, None]).long()
    ids = torch.where(mask.bool(), ids, PAD)
    return [({"input_ids": ids[i:i + 8], "attention_mask": mask[i:i + 8]}, y[i:i + 8]) for i in range(0, N, 8)], \
        lengths.numpy()


def _reference(model: torch.nn.Module, family: str, batches: list, lengths: np.ndarray,
               pool: str = "auto") -> dict[str, np.ndarray]:
    """The HIDDEN rows' features from the model's hidden_states, pooled by the definition, sample by sample: the
    last real token of a decoder, the first token otherwise (``"auto"``), or the mean of the real tokens."""
    feats: dict[str, list[np.ndarray]] = {row: [] for row in HIDDEN[family]}
    i = 0
    with torch.no_grad():
        for inputs, _ in batches:
            hidden = model(**inputs, output_hidden_states=True).hidden_states
            for b in range(len(inputs[next(iter(inputs))])):
                n = int(lengths[i])
                for row, k in HIDDEN[family].items():
                    seq = hidden[k][b].numpy()
                    if pool == "mean":
                        feats[row].append(seq[:n].mean(axis=0))
                    else:
                        feats[row].append(seq[n - 1] if family in ("gpt2", "llama") else seq[0])
                i += 1
    return {row: np.stack(v) for row, v in feats.items()}


@pytest.mark.parametrize("family", ["bert", "gpt2", "llama", "vit"])
def test_default_arguments_measure_every_block(family: str) -> None:
    torch.manual_seed(0)
    model = _tiny(family)
    batches, lengths = _data(family)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = pnc.measure(model, batches)
    # ViT's class token enters before any attention: the same vector for every image, so C is undefined there
    assert [str(w.message).split(":")[0] for w in caught if "compression" in str(w.message)] == \
        (["layer 0 (vit.embeddings)"] if family == "vit" else [])
    names = report.names
    # the embedding output first, then every transformer block once, in forward order
    blocks = [n for n in names if n.split(".")[-1].isdigit()]
    assert len(blocks) == 2 and names.index(blocks[0]) < names.index(blocks[1])
    assert all(names.index(r) < names.index(blocks[0]) for r in HIDDEN[family] if HIDDEN[family][r] == 0)
    assert "input: not a single floating-point tensor" in report.notes
    if family in SKIPPED:
        assert any(note.startswith(SKIPPED[family]) for note in report.notes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # ViT's embedding row, as above
        ref = pnc.report_from_features(_reference(model, family, batches, lengths), np.arange(N) % K)
    for row in HIDDEN[family]:
        for col in ("compression", "discrimination", "cdnv", "nc2_etf"):
            got, want = report.row(row)[col], ref.row(row)[col]
            np.testing.assert_allclose(got, want, **TOL, err_msg=f"{family} {row} {col}")
    if family == "vit":
        assert np.isnan(report.row("vit.embeddings")["compression"])
        assert "class means coincide" in report.row("vit.embeddings")["note"]
        assert np.isfinite(report.row("vit.layers.0")["compression"])


@pytest.mark.parametrize("family", ["bert", "llama"])
def test_mean_pool_averages_the_real_tokens(family: str) -> None:
    model = _tiny(family)
    batches, lengths = _data(family)
    report = pnc.measure(model, batches, pool="mean")
    ref = pnc.report_from_features(_reference(model, family, batches, lengths, pool="mean"), np.arange(N) % K)
    for row in HIDDEN[family]:
        for col in ("compression", "discrimination", "cdnv", "nc2_etf"):
            np.testing.assert_allclose(report.row(row)[col], ref.row(row)[col], **TOL, err_msg=f"{row} {col}")


@pytest.mark.parametrize("family", ["bert", "gpt2", "llama"])
def test_padding_changes_nothing(family: str) -> None:
    model = _tiny(family)
    plain = pnc.measure(model, _data(family)[0], metrics="all")
    padded = pnc.measure(model, _data(family, extra_padding=5)[0], metrics="all")
    assert padded.names == plain.names and padded.columns == plain.columns
    for col in plain.columns:
        if col not in ("name", "note"):
            np.testing.assert_allclose(padded.column(col), plain.column(col), **TOL, err_msg=col)


@pytest.mark.parametrize("pool", ["mean", "first", "last"])
def test_every_pool_skips_padding(pool: str) -> None:
    model = _tiny("bert")
    plain = pnc.measure(model, _data("bert")[0], pool=pool)
    padded = pnc.measure(model, _data("bert", extra_padding=3)[0], pool=pool)
    for col in ("compression", "discrimination", "cdnv"):
        np.testing.assert_allclose(padded.column(col), plain.column(col), **TOL, err_msg=col)


def test_auto_pool_reads_the_architecture() -> None:
    assert [pnc.features.auto_pool(_tiny(f)) for f in ("bert", "gpt2", "llama", "vit")] == \
        ["first", "last", "last", "first"]
    layer = torch.nn.TransformerEncoderLayer(8, 2, batch_first=True)
    assert pnc.features.auto_pool(torch.nn.TransformerEncoder(layer, 2)) == "mean"


def test_tensor_batches_match_dict_batches_without_padding() -> None:
    model = _tiny("bert")
    ids = torch.randint(3, VOCAB, (N, T), generator=torch.Generator().manual_seed(1))
    y = torch.arange(N) % K
    from_tensors = pnc.measure(model, (ids, y), batch_size=8)
    from_dicts = pnc.measure(model, [({"input_ids": ids[i:i + 8], "attention_mask": torch.ones(8, T)}, y[i:i + 8])
                                     for i in range(0, N, 8)])
    assert from_tensors.names == from_dicts.names
    np.testing.assert_allclose(from_tensors.column("compression"), from_dicts.column("compression"), **TOL)


def test_bad_input_says_what_to_change() -> None:
    bert, vit = _tiny("bert"), _tiny("vit")
    batches = _data("bert")[0]
    with pytest.raises(ValueError, match=r"pool must be one of .*'auto'.*got 'cls'"):
        pnc.measure(bert, batches, pool="cls")
    renamed = [({"ids": x["input_ids"], "attention_mask": x["attention_mask"]}, y) for x, y in batches]
    with pytest.raises(ValueError, match=r"keys \['ids'\] are not arguments of BertForSequenceClassification.forward "
                                         r"\(it takes \['input_ids'.*batch_fn="):
        pnc.measure(bert, renamed)
    only_mask = [({"attention_mask": x["attention_mask"]}, y) for x, y in batches]
    with pytest.raises(ValueError, match=r"failed for a batch with keys \['attention_mask'\]: You must specify "
                                         r"exactly one of input_ids or inputs_embeds.*batch_fn="):
        pnc.measure(bert, only_mask)
    with pytest.raises(ValueError, match=r"keys \['input_ids'\] are not arguments of "
                                         r"ViTForImageClassification.*pixel_values.*batch_fn="):
        pnc.measure(vit, batches)
    with pytest.raises(ValueError, match=r"pool='flatten' would put padding tokens.*pool='mean'"):
        pnc.measure(bert, batches, pool="flatten")
    with pytest.raises(ValueError, match=r"layer 'transformer.wpe' output not per-sample.*one row per sample"):
        pnc.measure(_tiny("gpt2"), _data("gpt2")[0], layers=["transformer.wpe"])


def test_pnc_does_not_import_transformers() -> None:
    code = "import sys, pnc, pnc.features, pnc.report; assert 'transformers' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
