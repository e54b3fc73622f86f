# cell: argmax_offset
# loses: test_argmax_offset test_no_valid_query
# Divides the hits by every real query, also those whose token t + offset is outside the
# sentence or padding (query 0 for offset -1).
def argmax_offset_fraction(attn, offset, mask=None):
    T = attn.shape[-1]
    real = torch.ones(attn.shape[:-1], dtype=torch.bool, device=attn.device)
    if mask is not None:
        real = real & mask
    t = torch.arange(T, device=attn.device)
    hits = (attn.argmax(-1) == t + offset) & real
    count = real.sum(-1)
    if (count == 0).any():
        raise ValueError("no real query")
    return hits.sum(-1).to(attn.dtype) / count
