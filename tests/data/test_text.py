import pytest

from saelib.data.text import load_corpus, tokenize_and_chunk


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
