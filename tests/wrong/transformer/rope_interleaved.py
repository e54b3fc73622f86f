# cell: rope
# loses: test_rope_values
# The paper's interleaved pairs (x_0, x_1), (x_2, x_3), ... instead of the course's rotate-half pairs.
def rope(x, positions, base=10000.0):
    E = x.shape[-1]
    if E % 2:
        raise ValueError("the head dim must be even")
    theta = base ** (-torch.arange(0, E, 2, dtype=torch.float64) / E)
    angle = positions.double()[:, None] * theta  # (T, E/2)
    cos, sin = angle.cos().to(x.dtype), angle.sin().to(x.dtype)
    even, odd = x[..., 0::2], x[..., 1::2]
    out = torch.stack((even * cos - odd * sin, odd * cos + even * sin), dim=-1)  # (..., T, E/2, 2)
    return out.flatten(-2)
