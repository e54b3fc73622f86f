# cell: previous_token
# loses: test_previous_token
# Off by one the other way: reads attn[t, t + 1], the next token, for the queries 0 .. T-2.
def previous_token_score(attn, mask=None):
    T = attn.shape[-1]
    real = torch.ones(attn.shape[:-1], dtype=torch.bool, device=attn.device)
    if mask is not None:
        real = real & mask
    t = torch.arange(T - 1, device=attn.device)
    previous = attn[..., t, t + 1]
    valid = real[..., 1:] & real[..., :-1]
    count = valid.sum(-1)
    if (count == 0).any():
        raise ValueError("no query with a real previous token")
    return torch.where(valid, previous, 0.0).sum(-1) / count
