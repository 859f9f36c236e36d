"""Solutions to exercises/05_gradient_sae."""
import torch


def gsae_scores(pre, g, W_dec, beta):
    unit = W_dec / W_dec.norm(dim=1, keepdim=True)
    influence = (g @ unit.T).abs()                        # |d_i . g|, (N, m)
    return torch.where(pre > 0, pre * (1 + beta * influence), pre)


def gsae_codes(pre, g, W_dec, beta, k):
    idx = gsae_scores(pre, g, W_dec, beta).topk(k, dim=1).indices
    return torch.zeros_like(pre).scatter(1, idx, pre.gather(1, idx).relu())
