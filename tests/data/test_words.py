"""Word lists for the first-letter absorption data (saelib.data.words)."""
from saelib.data.words import alpha_words


class _FakeTok:
    vocab = [" cat", "dog", " Dog", " x", " naïve", " a1", " tree", "\n"]

    def __len__(self):
        return len(self.vocab)

    def decode(self, ids):
        return self.vocab[ids[0]]


def test_alpha_words_keeps_leading_space_ascii_words():
    assert alpha_words(_FakeTok()) == [(0, "cat"), (2, "Dog"), (6, "tree")]
