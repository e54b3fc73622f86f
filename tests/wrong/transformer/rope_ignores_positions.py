# cell: rope
# loses: test_rope_relative test_rope_values
# Rotates token t by its index t, not by positions[t]: wrong after a KV cache's offset.
def rope(x, positions, base=10000.0):
    E, T = x.shape[-1], x.shape[-2]
    if E % 2:
        raise ValueError("the head dim must be even")
    half = E // 2
    theta = base ** (-torch.arange(0, E, 2, dtype=torch.float64) / E)
    angle = torch.arange(T, dtype=torch.float64)[:, None] * theta
    cos, sin = angle.cos().to(x.dtype), angle.sin().to(x.dtype)
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)
