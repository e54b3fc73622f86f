# cell: previous_token
# loses: test_no_valid_query
# Right scores, but 0 / 0 = NaN where no query is valid instead of a ValueError.
def previous_token_score(attn, mask=None):
    T = attn.shape[-1]
    real = torch.ones(attn.shape[:-1], dtype=torch.bool, device=attn.device)
    if mask is not None:
        real = real & mask
    t = torch.arange(1, T, device=attn.device)
    valid = real[..., 1:] & real[..., :-1]
    return torch.where(valid, attn[..., t, t - 1], 0.0).sum(-1) / valid.sum(-1)
