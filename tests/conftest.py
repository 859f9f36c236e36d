import os
import tempfile

import pytest
import torch

# Tests never write into the user's cache or figures unless they ask for it.
os.environ.setdefault("SAELIB_FIGURES", tempfile.mkdtemp(prefix="saelib-figs-"))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory):
    """A tiny Llama saved locally with save_pretrained, with a word-level tokenizer trained here."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    path = tmp_path_factory.mktemp("tiny_lm")
    text = ["the cat sat on the mat", "a dog ran in the park", "the quick brown fox jumps over the lazy dog"] * 20
    tk = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tk.train_from_iterator(text, trainers.WordLevelTrainer(special_tokens=["[UNK]", "</s>"]))
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="[UNK]", eos_token="</s>")
    cfg = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=4,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                      eos_token_id=tok.eos_token_id)
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)
