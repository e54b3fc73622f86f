# cell: rope
# loses: test_rope_properties
# The float64 tables are never turned back into x's dtype: float32 queries come back as float64.
def rope(x, positions, base=10000.0):
    E = x.shape[-1]
    if E % 2:
        raise ValueError("the head dim must be even")
    half = E // 2
    theta = base ** (-torch.arange(0, E, 2, dtype=torch.float64) / E)
    angle = positions.double()[:, None] * theta
    cos, sin = angle.cos(), angle.sin()
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)
