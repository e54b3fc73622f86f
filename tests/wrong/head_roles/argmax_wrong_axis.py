# cell: argmax_offset
# loses: test_argmax_offset
# argmax over the queries (dim -2) instead of over each query's keys.
def argmax_offset_fraction(attn, offset, mask=None):
    T = attn.shape[-1]
    real = torch.ones(attn.shape[:-1], dtype=torch.bool, device=attn.device)
    if mask is not None:
        real = real & mask
    t = torch.arange(T, device=attn.device)
    inside = (t + offset >= 0) & (t + offset < T)
    valid = real & real[..., (t + offset).clamp(0, T - 1)] & inside
    hits = attn.argmax(-2) == t + offset
    count = valid.sum(-1)
    if (count == 0).any():
        raise ValueError("no valid query")
    return (hits & valid).sum(-1).to(attn.dtype) / count
