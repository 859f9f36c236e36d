"""Where the data comes from: the LM and its residual stream (``lm``), text corpora (``text``), the
cached activation and gradient harvest (``harvest``), MNIST (``mnist``), synthetic data with known
features and the toys (``synthetic``), and the first-letter word activations (``words``).
"""
