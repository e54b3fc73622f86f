# cell: gqa_attention
# loses: test_gqa_no_copy
# Right numbers, but copies every key/value head G times with repeat_interleave.
def gqa_attention(query, key, value):
    B, H, T, E = query.shape
    S = key.size(2)
    G = H // key.size(1)
    k = key.repeat_interleave(G, dim=1)
    v = value.repeat_interleave(G, dim=1)
    s = query @ k.transpose(-2, -1) / math.sqrt(E)
    mask = torch.ones(T, S, dtype=torch.bool, device=query.device).tril(diagonal=S - T)
    return torch.softmax(s.masked_fill(~mask, -math.inf), dim=-1) @ v
