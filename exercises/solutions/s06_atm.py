"""Solutions to exercises/06_atm."""
import math

import torch


def atm_importance(mag, freq, contrib, weights):
    def z(v):
        v = torch.log(v + 1e-8)
        return (v - v.mean()) / v.std()
    w_m, w_p, w_r = weights
    return w_m * z(mag) + w_p * z(freq) + w_r * z(contrib)


def atm_mask_probabilities(importance, c, temperature, max_mask_frac):
    tau = importance.mean() - c * importance.std()
    eligible = importance < tau
    cap = math.floor(max_mask_frac * len(importance))
    if eligible.sum() > cap:                              # only the `cap` least important may be masked
        eligible = torch.zeros_like(eligible)
        eligible[importance.argsort()[:cap]] = True
    return torch.sigmoid((tau - importance) / temperature) * eligible
