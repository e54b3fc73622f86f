# cell: prefix
# Python loops over the heads and queries, straight from the definition.
def prefix_matching_score(attn, tokens, mask=None):
    T = attn.shape[-1]
    lead = attn.shape[:-1]
    tok = torch.broadcast_to(tokens, lead).reshape(-1, T)
    real = torch.ones(lead, dtype=torch.bool) if mask is None else torch.broadcast_to(mask, lead)
    real = real.reshape(-1, T)
    flat = attn.reshape(-1, T, T)
    scores = []
    for h in range(flat.shape[0]):
        total, count = 0.0, 0
        for t in range(T):
            if not real[h, t]:
                continue
            keys = [j for j in range(1, t + 1) if tok[h, j - 1] == tok[h, t] and real[h, j - 1] and real[h, j]]
            if keys:
                total = total + flat[h, t, keys].sum()
                count += 1
        if count == 0:
            raise ValueError("a head with no query to score")
        scores.append(total / count)
    return torch.stack(scores).reshape(attn.shape[:-2]).to(attn.dtype)
