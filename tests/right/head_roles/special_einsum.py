# cell: special_mass
# einsum over the keys, the mean over real queries as a weighted sum.
def special_token_mass(attn, special, mask=None):
    T = attn.shape[-1]
    real = torch.ones(T, dtype=attn.dtype, device=attn.device)
    if mask is not None:
        real = mask.to(attn.dtype) * real
    mass = torch.einsum("...tj,...j->...t", attn, special.to(attn.dtype))  # (..., T)
    real = real.expand(mass.shape)
    count = real.sum(-1)
    if (count == 0).any():
        raise ValueError("some head has no real query")
    return torch.einsum("...t,...t->...", mass, real) / count
