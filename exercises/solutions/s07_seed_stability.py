"""Solutions to exercises/07_seed_stability."""
from scipy.optimize import linear_sum_assignment


def matched_mcc(A, B):
    A_n, B_n = A / A.norm(dim=1, keepdim=True), B / B.norm(dim=1, keepdim=True)
    C = (A_n @ B_n.T).numpy()
    rows, cols = linear_sum_assignment(C, maximize=True)
    return float(C[rows, cols].mean())
