# cell: special_mass
# loses: test_special_mass
# Multiplies attn by special without a query axis: right for one (T,) vector, wrong (or an
# error) for per-sentence (B, 1, T) masks, whose B lines up with the heads.
def special_token_mass(attn, special, mask=None):
    real = torch.ones(attn.shape[:-1], dtype=torch.bool, device=attn.device)
    if mask is not None:
        real = real & mask
    mass = (attn * special).sum(-1)
    count = real.sum(-1)
    if (count == 0).any():
        raise ValueError("no real query")
    return torch.where(real, mass, 0.0).sum(-1) / count
