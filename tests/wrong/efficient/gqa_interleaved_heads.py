# cell: gqa_attention
# loses: test_gqa_matches_torch test_gqa_no_copy test_decode_matches_full_causal
# Groups the query heads interleaved (head h uses key/value head h % Hkv), not contiguously.
def gqa_attention(query, key, value):
    B, H, T, E = query.shape
    Hkv, S = key.size(1), key.size(2)
    G = H // Hkv
    q = query.unflatten(1, (G, Hkv)).transpose(1, 2).reshape(B, Hkv, G * T, E) / math.sqrt(E)
    s = (q @ key.transpose(-2, -1)).unflatten(2, (G, T))
    i = torch.arange(S - T, S, device=query.device)[:, None]
    j = torch.arange(S, device=query.device)
    w = torch.softmax(s.masked_fill(j > i, -math.inf), dim=-1).flatten(2, 3)
    out = (w @ value).unflatten(2, (G, T))  # (B, Hkv, G, T, Ev)
    return out.transpose(1, 2).reshape(B, H, T, value.size(-1))
