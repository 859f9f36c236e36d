import pytest

import torch

from saelib.data.text import DATA_SEED, chunk_split, data_record, load_corpus, sequence_documents, tokenize_and_chunk


@pytest.fixture(scope="module")
def tok(tiny_lm):
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(tiny_lm)


def test_local_corpus_split_is_fixed_and_disjoint():
    ds = load_corpus()
    assert len(ds["train"]) > 300 and 30 < len(ds["eval"]) < 60
    assert set(ds["train"]["text"]).isdisjoint(list(ds["eval"]["text"]))
    assert set(ds["train"]["source"]) == {"wiki", "lee"}
    assert "'''" not in ds["train"]["text"][0]
    with pytest.raises(ValueError, match="corpus must be one of"):
        load_corpus("local:nope")


def test_tokenize_and_chunk_shapes(tiny_lm):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(tiny_lm)
    chunks = tokenize_and_chunk(load_corpus("local:gensim-lee")["eval"], tok, ctx_len=16, max_tokens=100)
    assert chunks.shape == (7, 16)
    with pytest.raises(ValueError, match="ctx_len must be"):
        tokenize_and_chunk(load_corpus("local:gensim-lee")["eval"], tok, ctx_len=1)


def test_hub_style_corpus_path_on_local_json(tmp_path):
    """The online path (datasets.load_dataset) exercised on a JSON-lines file made here."""
    import json
    path = tmp_path / "docs.jsonl"
    path.write_text("\n".join(json.dumps({"body": f"document number {i}"}) for i in range(40)))
    ds = load_corpus("json", text_field="body", data_files=str(path))
    assert len(ds["train"]) == 38 and len(ds["eval"]) == 2
    assert set(ds["train"]["text"]).isdisjoint(list(ds["eval"]["text"]))


def test_held_out_chunks_span_every_document_of_both_sources(tok):
    """The whole held-out split, permuted: every document (wiki and lee) appears, none of the training split."""
    ds = load_corpus()
    held = chunk_split(ds["eval"], tok, ctx_len=128)
    assert held.n_split_chunks == len(held.tokens)
    assert set(torch.unique(held.doc).tolist()) == set(range(len(ds["eval"])))
    rec = data_record(held.doc, held.sources)
    assert rec["wiki"]["documents"] == rec["wiki"]["split_documents"] > 0
    assert rec["lee"]["documents"] == rec["lee"]["split_documents"] > 0
    assert rec["all"]["tokens"] == held.tokens.numel() and rec["all"]["sequences"] == len(held.tokens)
    # a small harvest already reaches far more documents than the document-order prefix did
    few = chunk_split(ds["eval"], tok, ctx_len=128, max_tokens=16 * 128)
    first = chunk_split(ds["eval"], tok, ctx_len=128, max_tokens=16 * 128, order="file")
    assert len(torch.unique(few.doc)) > 2 * len(torch.unique(first.doc))


def test_chunk_order_is_a_fixed_permutation_with_the_prefix_property(tok):
    ds = load_corpus("local:gensim-lee")["train"]
    small = chunk_split(ds, tok, ctx_len=32, max_tokens=100)
    big = chunk_split(ds, tok, ctx_len=32, max_tokens=3200)
    assert small.tokens.shape == (4, 32) and big.tokens.shape == (100, 32)
    assert torch.equal(big.tokens[:4], small.tokens) and torch.equal(big.doc[:4], small.doc)
    assert torch.equal(chunk_split(ds, tok, ctx_len=32, max_tokens=3200).tokens, big.tokens)   # deterministic
    assert not torch.equal(chunk_split(ds, tok, 32, 3200, seed=DATA_SEED + 1).tokens, big.tokens)
    # the permuted chunks are the document-order chunks, reordered
    every = chunk_split(ds, tok, ctx_len=32, order="file").tokens
    rows = {tuple(r) for r in every.tolist()}
    assert all(tuple(r) in rows for r in big.tokens.tolist())
    # each token's document index is right: its run is a contiguous slice of that document's ids (+ EOS)
    seq = big.tokens[0].tolist()
    for d in torch.unique(big.doc[0]).tolist():
        run = [t for t, dd in zip(seq, big.doc[0].tolist()) if dd == d]
        ids = tok(ds[d]["text"], add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        assert any(ids[i: i + len(run)] == run for i in range(len(ids) - len(run) + 1))
    with pytest.raises(ValueError, match="order must be one of"):
        chunk_split(ds, tok, ctx_len=32, order="random")


def test_sequence_documents_takes_the_majority_document():
    doc = torch.tensor([[0, 0, 1], [1, 2, 2], [3, 3, 3]])
    assert sequence_documents(doc).tolist() == [0, 2, 3]
