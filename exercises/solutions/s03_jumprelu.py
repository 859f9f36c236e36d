"""Solutions to exercises/03_jumprelu."""


def rect(u):
    return (u.abs() < 0.5).to(u.dtype)


def jumprelu_theta_grad(z, theta, eps, g):
    return (-(theta / eps) * rect((z - theta) / eps) * g).sum(0)


def step_theta_grad(z, theta, eps, g):
    return (-(1 / eps) * rect((z - theta) / eps) * g).sum(0)
