"""Token-level labels (issue #28): every real token position of a causal language model is a sample whose class is
the next token. The shift, the attention mask and HuggingFace's -100 are checked on hand-made labels, on a plain
torch model and on a small random GPT-2 (vocabulary 32,000), where padding never changes the table."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import pnc
from pnc import metrics as M
from pnc.features import token_targets

transformers = pytest.importorskip("transformers")


def test_next_token_targets_shift_by_one_and_skip_padding_and_ignored_labels():
    ids = torch.tensor([[5, 6, 7, 8], [9, 10, 0, 0], [0, 11, 12, 13]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [0, 1, 1, 1]])  # right padding, then left padding
    keep, y = token_targets(ids, mask, "next")
    assert keep.tolist() == [[True, True, True], [True, False, False], [False, True, True]]
    assert y.tolist() == [6, 7, 8, 10, 12, 13]  # position t predicts token t + 1
    labels = ids.clone()
    labels[0, 2] = -100  # HuggingFace's ignore index: the position before it has no label
    keep, y = token_targets(labels, mask, "next")
    assert keep[0].tolist() == [True, False, True] and y.tolist() == [6, 8, 10, 12, 13]
    keep, y = token_targets(ids, mask, "aligned")
    assert keep.tolist() == mask.bool().tolist() and y.tolist() == [5, 6, 7, 8, 9, 10, 11, 12, 13]
    keep, y = token_targets(ids, None, "next")  # no mask: every token is real
    assert keep.all() and y.tolist() == ids[:, 1:].reshape(-1).tolist()


@pytest.mark.parametrize("labels, mask, option, message", [
    (torch.arange(3), None, "next", r"labels shaped \(batch, tokens\)"),
    (torch.zeros(2, 4, dtype=torch.long), torch.ones(2, 5), "next", "attention_mask"),
    (torch.zeros(2, 1, dtype=torch.long), None, "next", "at least two tokens"),
    (torch.zeros(2, 4), None, "next", "integers"),
    (torch.zeros(2, 4, dtype=torch.long), None, "previous", "token_labels"),
])
def test_bad_token_labels_are_value_errors(labels, mask, option, message):
    with pytest.raises(ValueError, match=message):
        token_targets(labels, mask, option)


class TinyLM(nn.Module):
    """Embedding, two linear blocks and a pooled head: the head's output is per sequence, not per token."""

    def __init__(self, vocab: int = 50, dim: int = 6) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.block = nn.Sequential(nn.Linear(dim, dim), nn.Tanh())
        self.head = nn.Linear(dim, 3)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.block(self.embed(ids)).mean(dim=1))


def test_plain_model_token_rows_equal_the_hand_computed_statistics():
    torch.manual_seed(0)
    model = TinyLM().double()
    ids = torch.randint(0, 50, (40, 9))
    with pytest.raises(ValueError, match="not one vector per token"):  # an explicit per-sequence layer is refused
        pnc.measure(model, (ids, ids), token_labels="next", layers=["embed", "head"])
    report = pnc.measure(model, (ids, ids), token_labels="next", layers=["embed", "block"],
                         metrics=("compression", "cdnv"), batch_size=16)
    with torch.no_grad():
        hidden = model.block(model.embed(ids))[:, :-1].reshape(-1, 6)
    by_hand = M.ClassStats().update(hidden, ids[:, 1:].reshape(-1))
    assert report.names == ["embed", "block"]
    assert report.row("block")["compression"] == pytest.approx(M.compression(by_hand), rel=1e-12)
    assert report.row("block")["cdnv"] == pytest.approx(M.cdnv(by_hand), rel=1e-12)
    default = pnc.measure(model, (ids, ids), token_labels="next", metrics=("compression",))
    assert default.names == ["embed", "block.0", "block.1"] and any("head: output is not one vector per token" in n
                                                       for n in default.notes)


def test_two_dimensional_labels_need_token_labels():
    model = TinyLM()
    ids = torch.randint(0, 50, (8, 5))
    with pytest.raises(ValueError, match="token_labels='next'"):
        pnc.measure(model, (ids, ids))
    with pytest.raises(ValueError, match="token_labels must be one of"):
        pnc.measure(model, (ids, ids), token_labels="shifted")


def gpt2(vocab: int = 32_000):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=vocab, n_positions=64, n_embd=32, n_layer=2, n_head=2, bos_token_id=0,
                        eos_token_id=0)
    return GPT2LMHeadModel(config).double().eval()


def sequences(extra_padding: int = 0, n: int = 24, width: int = 16, vocab: int = 2_000, seed: int = 0):
    """Batches of ({"input_ids", "attention_mask"}, input_ids) with 6 to 16 real tokens, right-padded.

    With causal attention a position's features depend on its prefix only: two sequences with the same first token
    would give two next-token classes the same mean at every layer (CDNV undefined), so first tokens are distinct."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, vocab, (n, width), generator=g)
    ids[:, 0] = 1 + torch.arange(n)  # distinct first tokens: no two positions share a whole prefix
    lengths = torch.randint(6, width + 1, (n,), generator=g)
    mask = (torch.arange(width) < lengths[:, None]).long()
    ids = torch.where(mask.bool(), ids, 0)
    ids = torch.cat([ids, torch.zeros(n, extra_padding, dtype=torch.long)], dim=1)
    mask = torch.cat([mask, torch.zeros(n, extra_padding, dtype=torch.long)], dim=1)
    return [({"input_ids": ids[i : i + 8], "attention_mask": mask[i : i + 8]}, ids[i : i + 8]) for i in range(0, n, 8)]


def test_gpt2_next_token_table_one_row_per_block_and_padding_never_counted():
    lm = gpt2()
    report = pnc.measure(lm, sequences(), token_labels="next", layers="transformer.h.?")
    padded = pnc.measure(lm, sequences(extra_padding=7), token_labels="next", layers="transformer.h.?")
    assert report.names == ["transformer.h.0", "transformer.h.1"]  # one row per transformer block
    for column in ("compression", "discrimination", "cdnv", "nc2_etf", "nc2_equinorm"):
        np.testing.assert_allclose(padded[column], report[column], rtol=1e-10, atol=0)
    # the same statistics by hand from the model's own hidden states: real positions whose next token is real
    batches = sequences()
    stats = M.ClassStats(track_covariance=False)
    for inputs, ids in batches:
        with torch.no_grad():
            hidden = lm(**inputs, output_hidden_states=True).hidden_states[1]  # the output of block 0
        real = inputs["attention_mask"].bool()
        keep = real[:, :-1] & real[:, 1:]
        stats.update(hidden[:, :-1][keep], ids[:, 1:][keep])
    assert stats.n_samples == sum(int(inp["attention_mask"].sum()) - len(ids) for inp, ids in batches)
    assert report.row("transformer.h.0")["cdnv"] == pytest.approx(M.cdnv(stats), rel=1e-10)
    assert report.row("transformer.h.0")["compression"] == pytest.approx(M.compression(stats), rel=1e-10)


def test_gpt2_nc3_nc4_at_the_row_feeding_the_lm_head_match_a_hand_computation():
    lm = gpt2()
    report = pnc.measure(lm, sequences(), token_labels="next", layers=["transformer.h.1", "transformer.ln_f"],
                         metrics=("nc3", "nc4"))
    feats, labels, logits = [], [], []
    for inputs, ids in sequences():
        with torch.no_grad():
            out = lm(**inputs, output_hidden_states=True)
        real = inputs["attention_mask"].bool()
        keep = real[:, :-1] & real[:, 1:]
        feats.append(out.hidden_states[-1][:, :-1][keep])  # after ln_f: what the LM head reads
        labels.append(ids[:, 1:][keep])
        logits.append(out.logits[:, :-1][keep])
    feats, labels, logits = torch.cat(feats), torch.cat(labels), torch.cat(logits)
    row = report.row("transformer.ln_f")
    assert report.row("transformer.h.1")["nc4"] is None
    assert row["nc4"] == pytest.approx(M.nc4(feats, labels, logits, tile_size=5), abs=1e-12)
    st = M.ClassStats().update(feats, labels)
    assert row["nc3"] == pytest.approx(M.nc3(st, lm.lm_head.weight.detach()[st.classes]), rel=1e-10)
