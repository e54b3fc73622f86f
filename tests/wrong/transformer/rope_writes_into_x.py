# cell: rope
# loses: test_rope_properties
# Right values, but written into x itself (out = x is no copy): the caller's queries change.
def rope(x, positions, base=10000.0):
    E = x.shape[-1]
    if E % 2:
        raise ValueError("the head dim must be even")
    half = E // 2
    theta = base ** (-torch.arange(0, E, 2, dtype=torch.float64) / E)
    angle = positions.double()[:, None] * theta
    cos, sin = angle.cos().to(x.dtype), angle.sin().to(x.dtype)
    x1, x2 = x[..., :half].clone(), x[..., half:].clone()
    out = x
    out[..., :half] = x1 * cos - x2 * sin
    out[..., half:] = x2 * cos + x1 * sin
    return out
