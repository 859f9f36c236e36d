"""Solutions to exercises/04_mutual_choice."""
import torch


def feature_choice_mask(pre, m):
    mask = torch.zeros_like(pre, dtype=torch.bool)
    order = pre.argsort(dim=0, descending=True)           # each column's tokens, best first
    for i in range(pre.shape[1]):
        rows = order[: int(m[i]), i]
        mask[rows[pre[rows, i] > 0], i] = True
    return mask


def zipf_fit(densities, min_density):
    d = densities.double()
    ranks = torch.empty_like(d)
    ranks[d.argsort(descending=True, stable=True)] = torch.arange(1, len(d) + 1, dtype=d.dtype)
    live = d > min_density
    lx, ly = ranks[live].log(), d[live].log()
    slope = ((lx - lx.mean()) * (ly - ly.mean())).sum() / (lx - lx.mean()).pow(2).sum()
    resid = ly - ly.mean() - slope * (lx - lx.mean())
    r2 = 1 - resid.pow(2).sum() / (ly - ly.mean()).pow(2).sum()
    return -slope.item(), r2.item()
