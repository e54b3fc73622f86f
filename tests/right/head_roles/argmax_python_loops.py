# cell: argmax_offset
# Python loops over every head and query, on plain lists.
def argmax_offset_fraction(attn, offset, mask=None):
    T = attn.shape[-1]
    batch = attn.shape[:-2]
    rows = attn.reshape(-1, T, T).tolist()
    if mask is None:
        mask = torch.ones(T, dtype=torch.bool)
    real = mask.expand(*batch, T).reshape(-1, T).tolist()
    fractions = []
    for a, r in zip(rows, real):
        hits = valid = 0
        for t in range(T):
            k = t + offset
            if 0 <= k < T and r[t] and r[k]:
                valid += 1
                best = max(range(T), key=lambda j: a[t][j])  # the first maximal key
                hits += best == k
        if valid == 0:
            raise ValueError("some head has no valid query")
        fractions.append(hits / valid)
    return torch.tensor(fractions, dtype=attn.dtype, device=attn.device).reshape(batch)
