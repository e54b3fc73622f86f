# cell: prefix
# One-hot tokens: match[t, j] = onehot(tokens[t]) . onehot(tokens[j - 1]), masks multiplied in, float arithmetic.
def prefix_matching_score(attn, tokens, mask=None):
    T = attn.shape[-1]
    lead = attn.shape[:-1]
    tokens = torch.broadcast_to(tokens, lead)
    real = torch.ones(lead, dtype=attn.dtype) if mask is None else torch.broadcast_to(mask, lead).to(attn.dtype)
    onehot = torch.nn.functional.one_hot(tokens - tokens.min()).to(attn.dtype)  # (..., T, V)
    before = torch.nn.functional.pad(onehot[..., :-1, :] * real[..., :-1, None], (0, 0, 1, 0))  # (..., T, V): key j -> token j - 1
    match = onehot @ before.transpose(-2, -1)  # (..., T, T): tokens[t] == tokens[j - 1]
    match = match * real[..., None, :] * real[..., :, None] * torch.ones(T, T, dtype=attn.dtype).tril(-1)
    valid = (match.sum(-1) > 0).to(attn.dtype)
    count = valid.sum(-1)
    if (count == 0).any():
        raise ValueError("no query has an earlier copy of its token")
    return ((attn * match).sum(-1) * valid).sum(-1) / count
