# cell: entropy
# loses: test_entropy
# Entropy in bits (log2) instead of nats.
def attention_entropy(attn, mask=None):
    real = torch.ones(attn.shape[:-1], dtype=torch.bool, device=attn.device)
    if mask is not None:
        real = real & mask
    rows = -torch.special.xlogy(attn, attn).sum(-1) / math.log(2)
    count = real.sum(-1)
    if (count == 0).any():
        raise ValueError("no real query")
    return torch.where(real, rows, 0.0).sum(-1) / count
