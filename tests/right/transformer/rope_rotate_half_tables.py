# cell: rope
# Hugging Face's form: cos and sin tables of width E (the angles twice) and rotate_half(x) = (-x2, x1).
def rope(x, positions, base=10000.0):
    E = x.shape[-1]
    if E % 2 != 0:
        raise ValueError(f"odd head dim {E}")
    inv_freq = 1.0 / (base ** (torch.arange(0, E, 2, dtype=torch.int64).double() / E))
    freqs = torch.outer(positions.double(), inv_freq)  # (T, E/2)
    emb = torch.cat((freqs, freqs), dim=-1)  # (T, E)
    x1, x2 = x.chunk(2, dim=-1)
    rotated = torch.cat((-x2, x1), dim=-1)
    return x * emb.cos().to(x.dtype) + rotated * emb.sin().to(x.dtype)
