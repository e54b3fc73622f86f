# cell: previous_token
# loses: test_previous_token test_no_valid_query
# Ignores the mask: padding queries (and queries after padding) are averaged in.
def previous_token_score(attn, mask=None):
    T = attn.shape[-1]
    if T < 2:
        raise ValueError("a one-token sentence has no previous token")
    t = torch.arange(1, T, device=attn.device)
    return attn[..., t, t - 1].mean(-1)
