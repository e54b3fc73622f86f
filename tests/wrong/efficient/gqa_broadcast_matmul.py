# cell: gqa_attention
# loses: test_gqa_no_copy
# A broadcast group axis: looks copy-free, but torch's matmul expands the keys G times.
def gqa_attention(query, key, value):
    B, H, T, E = query.shape
    Hkv, S = key.size(1), key.size(2)
    q = query.unflatten(1, (Hkv, H // Hkv)) / math.sqrt(E)  # (B, Hkv, G, T, E)
    s = q @ key.unsqueeze(2).transpose(-2, -1)  # (B, Hkv, G, T, S)
    mask = torch.ones(T, S, dtype=torch.bool, device=query.device).tril(diagonal=S - T)
    w = torch.softmax(s.masked_fill(~mask, -math.inf), dim=-1)
    return (w @ value.unsqueeze(2)).flatten(1, 2)
