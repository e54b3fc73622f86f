# cell: entropy
# loses: test_entropy
# p * log(p) by hand: a weight of exactly 0 gives 0 * -inf = NaN (one-hot rows, padding keys).
def attention_entropy(attn, mask=None):
    real = torch.ones(attn.shape[:-1], dtype=torch.bool, device=attn.device)
    if mask is not None:
        real = real & mask
    rows = -(attn * attn.log()).sum(-1)
    count = real.sum(-1)
    if (count == 0).any():
        raise ValueError("no real query")
    return torch.where(real, rows, 0.0).sum(-1) / count
