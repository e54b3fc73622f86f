# cell: rope
# loses: test_rope_values
# theta_i = base ** (-i / E) instead of base ** (-2i / E): the frequencies fall half as fast.
def rope(x, positions, base=10000.0):
    E = x.shape[-1]
    if E % 2:
        raise ValueError("the head dim must be even")
    half = E // 2
    theta = base ** (-torch.arange(half, dtype=torch.float64) / E)
    angle = positions.double()[:, None] * theta
    cos, sin = angle.cos().to(x.dtype), angle.sin().to(x.dtype)
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)
