# cell: prefix
# loses: test_prefix_matches test_prefix_edge
# Ignores the mask: padding queries count, and keys after a padding copy match.
def prefix_matching_score(attn, tokens, mask=None):
    T = attn.shape[-1]
    tokens = torch.broadcast_to(tokens, attn.shape[:-1])
    t = torch.arange(T)
    match = torch.zeros(attn.shape, dtype=torch.bool)
    match[..., :, 1:] = (tokens[..., :, None] == tokens[..., None, :-1]) & (t[1:][None, :] <= t[:, None])
    valid = match.any(-1)
    count = valid.sum(-1)
    if (count == 0).any():
        raise ValueError("no valid query")
    per_query = torch.where(match, attn, 0.0).sum(-1)
    return torch.where(valid, per_query, 0.0).sum(-1) / count
