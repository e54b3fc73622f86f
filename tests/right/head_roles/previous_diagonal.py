# cell: previous_token
# The sub-diagonal of every (T, T) matrix through diagonal(offset=-1), the mask shifted by slicing.
def previous_token_score(attn, mask=None):
    previous = attn.diagonal(offset=-1, dim1=-2, dim2=-1)  # (..., T - 1): attn[t + 1, t]
    real = torch.ones(attn.shape[:-1], dtype=torch.bool, device=attn.device)
    if mask is not None:
        real = real.logical_and(mask)
    valid = real[..., 1:].logical_and(real[..., :-1])
    if not bool(valid.any(-1).all()):
        raise ValueError("some head has no query with a real previous token")
    return (previous * valid).sum(-1) / valid.sum(-1)
