# cell: prefix
# loses: test_prefix_planted test_prefix_matches test_prefix_edge
# Scores the weight on the earlier copy itself (tokens[j] == tokens[t]): a duplicate-token head, not induction.
def prefix_matching_score(attn, tokens, mask=None):
    T = attn.shape[-1]
    lead = attn.shape[:-1]
    tokens = torch.broadcast_to(tokens, lead)
    real = torch.ones(lead, dtype=torch.bool) if mask is None else torch.broadcast_to(mask, lead)
    t = torch.arange(T)
    match = (tokens[..., :, None] == tokens[..., None, :]) & (t[None, :] < t[:, None])
    match = match & real[..., :, None] & real[..., None, :]
    valid = match.any(-1)
    count = valid.sum(-1)
    if (count == 0).any():
        raise ValueError("no valid query")
    per_query = torch.where(match, attn, 0.0).sum(-1)
    return torch.where(valid, per_query, 0.0).sum(-1) / count
