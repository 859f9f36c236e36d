"""Solutions to exercises/01_llama_scope."""
import math


def dataset_scale(x):
    return math.sqrt(x.shape[1]) / x.norm(dim=1).mean().item()


def global_threshold(scores, k):
    n_keep = scores.shape[0] * k
    top = scores.flatten().topk(n_keep + 1).values        # sorted, largest first
    return 0.5 * (top[n_keep - 1] + top[n_keep]).item()   # between the (N k)-th and (N k + 1)-th largest


def fold_decoder_norms(W_enc, b_enc, W_dec):
    n = W_dec.norm(dim=1)
    return W_enc * n, b_enc * n, W_dec / n[:, None]

