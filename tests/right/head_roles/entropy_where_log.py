# cell: entropy
# p log p through torch.where (the log only where p > 0), the mean over real queries by masked_fill.
def attention_entropy(attn, mask=None):
    plogp = torch.where(attn > 0, attn * torch.log(torch.where(attn > 0, attn, 1.0)), 0.0)
    rows = -plogp.sum(-1)  # (..., T)
    if mask is None:
        return rows.mean(-1)
    real = mask.expand(rows.shape)
    count = real.sum(-1)
    if (count == 0).any():
        raise ValueError("some head has no real query")
    return rows.masked_fill(~real, 0).sum(-1) / count
