# cell: gqa_attention
# loses: test_gqa_matches_torch
# Scales the queries with mul_ (in place): right numbers, but the caller's query tensor is changed.
def gqa_attention(query, key, value):
    B, H, T, E = query.shape
    Hkv, S = key.size(1), key.size(2)
    G = H // Hkv
    q = query.mul_(1 / math.sqrt(E)).reshape(B, Hkv, G * T, E)
    s = (q @ key.transpose(-2, -1)).unflatten(2, (G, T))
    i = torch.arange(S - T, S, device=query.device)[:, None]
    j = torch.arange(S, device=query.device)
    s = s.masked_fill(j > i, -math.inf)
    w = torch.softmax(s, dim=-1).flatten(2, 3)
    return (w @ value).reshape(B, H, T, value.size(-1))
