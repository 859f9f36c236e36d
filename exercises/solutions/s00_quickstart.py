"""Solutions to exercises/00_quickstart."""
import math

import numpy as np


def fvu(x, x_hat):
    return float(((x - x_hat) ** 2).sum() / ((x - x.mean(0)) ** 2).sum())


def metric_at_l0(l0s, values, target):
    order = np.argsort(l0s)
    l0s, values = np.asarray(l0s, float)[order], np.asarray(values, float)[order]
    if not l0s[0] <= target <= l0s[-1]:
        return math.nan
    return float(np.interp(np.log(target), np.log(l0s), values))


def verdict(lo, hi, margin):
    if lo >= margin:
        return "reproduced"
    if lo > 0:
        return "partly"
    return "not reproduced" if hi < margin else "inconclusive"
