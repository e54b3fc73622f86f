# cell: entropy
# loses: test_properties
# Dodges log 0 by overwriting the zero weights with 1 (1 log 1 = 0): right numbers, but
# the caller's attention tensor is changed.
def attention_entropy(attn, mask=None):
    real = torch.ones(attn.shape[:-1], dtype=torch.bool, device=attn.device)
    if mask is not None:
        real = real & mask
    attn.masked_fill_(attn == 0, 1.0)
    rows = -(attn * attn.log()).sum(-1)
    count = real.sum(-1)
    if (count == 0).any():
        raise ValueError("no real query")
    return torch.where(real, rows, 0.0).sum(-1) / count
