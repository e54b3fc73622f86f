# cell: gqa_attention
# loses: test_gqa_matches_torch test_gqa_no_copy test_decode_matches_full_causal
# Top-left causal mask (like is_causal=True): a new token sees only the first T cached keys.
def gqa_attention(query, key, value):
    B, H, T, E = query.shape
    Hkv, S = key.size(1), key.size(2)
    G = H // Hkv
    q = query.reshape(B, Hkv, G * T, E) / math.sqrt(E)
    s = (q @ key.transpose(-2, -1)).unflatten(2, (G, T))
    mask = torch.ones(T, S, dtype=torch.bool, device=query.device).tril()
    w = torch.softmax(s.masked_fill(~mask, -math.inf), dim=-1).flatten(2, 3)
    return (w @ value).reshape(B, H, T, value.size(-1))
