# cell: special_mass
# loses: test_special_mass
# Averages each query's special weights over the keys (mean) instead of summing them.
def special_token_mass(attn, special, mask=None):
    real = torch.ones(attn.shape[:-1], dtype=torch.bool, device=attn.device)
    if mask is not None:
        real = real & mask
    mass = (attn * special.unsqueeze(-2)).mean(-1)
    count = real.sum(-1)
    if (count == 0).any():
        raise ValueError("no real query")
    return torch.where(real, mass, 0.0).sum(-1) / count
