# cell: rope
# loses: test_rope_values
# Hard-codes base 10000: right at the default, wrong for LLaMA 3's 500000 or any other base.
def rope(x, positions, base=10000.0):
    E = x.shape[-1]
    if E % 2:
        raise ValueError("the head dim must be even")
    half = E // 2
    theta = 10000.0 ** (-torch.arange(0, E, 2, dtype=torch.float64) / E)
    angle = positions.double()[:, None] * theta
    cos, sin = angle.cos().to(x.dtype), angle.sin().to(x.dtype)
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)
