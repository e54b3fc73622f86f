# cell: prefix
# loses: test_prefix_planted test_prefix_matches test_prefix_edge
# torch.roll the wrong way: key j matches when tokens[j + 1] == tokens[t] (the key *before* the earlier copy).
def prefix_matching_score(attn, tokens, mask=None):
    T = attn.shape[-1]
    lead = attn.shape[:-1]
    tokens = torch.broadcast_to(tokens, lead)
    real = torch.ones(lead, dtype=torch.bool) if mask is None else torch.broadcast_to(mask, lead)
    shifted = torch.roll(tokens, -1, dims=-1)  # meant: the token before each key
    shifted_real = torch.roll(real, -1, dims=-1)
    t = torch.arange(T)
    match = (tokens[..., :, None] == shifted[..., None, :]) & (t[None, :] < t[:, None]) & (t[None, :] < T - 1)
    match = match & real[..., :, None] & real[..., None, :] & shifted_real[..., None, :]
    valid = match.any(-1)
    count = valid.sum(-1)
    if (count == 0).any():
        raise ValueError("no valid query")
    per_query = torch.where(match, attn, 0.0).sum(-1)
    return torch.where(valid, per_query, 0.0).sum(-1) / count
