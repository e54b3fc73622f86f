# cell: prefix
# loses: test_prefix_edge
# Returns 0 / 0 = NaN where no query counts instead of raising ValueError.
def prefix_matching_score(attn, tokens, mask=None):
    T = attn.shape[-1]
    lead = attn.shape[:-1]
    tokens = torch.broadcast_to(tokens, lead)
    real = torch.ones(lead, dtype=torch.bool) if mask is None else torch.broadcast_to(mask, lead)
    t = torch.arange(T)
    match = torch.zeros(attn.shape, dtype=torch.bool)
    match[..., :, 1:] = (tokens[..., :, None] == tokens[..., None, :-1]) & (t[1:][None, :] <= t[:, None])
    match[..., :, 1:] &= real[..., None, :-1] & real[..., None, 1:]
    match = match & real[..., :, None]
    valid = match.any(-1)
    per_query = torch.where(match, attn, 0.0).sum(-1)
    return torch.where(valid, per_query, 0.0).sum(-1) / valid.sum(-1)
