# cell: previous_token
# loses: test_previous_token test_no_valid_query
# Checks that query t is real but not that token t - 1 is: wrong once the mask has holes.
def previous_token_score(attn, mask=None):
    T = attn.shape[-1]
    real = torch.ones(attn.shape[:-1], dtype=torch.bool, device=attn.device)
    if mask is not None:
        real = real & mask
    t = torch.arange(1, T, device=attn.device)
    valid = real[..., 1:]
    count = valid.sum(-1)
    if (count == 0).any():
        raise ValueError("no query with a previous token")
    return torch.where(valid, attn[..., t, t - 1], 0.0).sum(-1) / count
