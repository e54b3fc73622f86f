# cell: rope
# loses: test_rope_properties
# No check of the head dim: an odd one fails deep inside torch with a RuntimeError, not ValueError.
def rope(x, positions, base=10000.0):
    E = x.shape[-1]
    half = E // 2
    theta = base ** (-torch.arange(0, E, 2, dtype=torch.float64) / E)
    angle = positions.double()[:, None] * theta
    cos, sin = angle.cos().to(x.dtype), angle.sin().to(x.dtype)
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)
