"""Solutions to exercises/08_feature_consistency."""
import itertools

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from saelib.metrics.matching import mcc   # exercises/07 has you write this one


def pw_mcc(dicts):
    return float(np.mean([mcc(a, b) for a, b in itertools.combinations(dicts, 2)]))


def per_latent_consistency(dicts, ref):
    def unit(w):
        return w / w.norm(dim=1, keepdim=True)
    cols = []
    for j, other in enumerate(dicts):
        if j == ref:
            continue
        C = (unit(dicts[ref]) @ unit(other).T).numpy()
        rows, partner = linear_sum_assignment(C, maximize=True)
        cols.append(C[rows, partner])
    return torch.tensor(np.mean(cols, axis=0))
