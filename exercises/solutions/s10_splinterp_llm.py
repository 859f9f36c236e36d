"""Solutions to exercises/10_splinterp_llm."""
import math

import numpy as np
import torch
from scipy import stats


def pam_decoder(Z, X, alpha):
    z_bar, x_bar = Z.mean(0), X.mean(0)
    Zc, Xc = Z - z_bar, X - x_bar
    W = torch.linalg.solve(Zc.T @ Zc + alpha * torch.eye(Z.shape[1], dtype=Z.dtype), Zc.T @ Xc)
    return W, x_bar - z_bar @ W


def relative_gain_interval(mse_pam, mse_adam):
    gain = 100 * (1 - np.asarray(mse_pam) / np.asarray(mse_adam))
    half = stats.t.ppf(0.975, df=len(gain) - 1) * gain.std(ddof=1) / math.sqrt(len(gain))
    return float(gain.mean()), float(gain.mean() - half), float(gain.mean() + half)
