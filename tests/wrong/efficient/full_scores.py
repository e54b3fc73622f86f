# cell: tiled_attention
# loses: test_tiled_never_builds_scores
# Right numbers, but builds the whole L x S score matrix and takes a plain softmax.
def tiled_attention(query, key, value, block_size=16, is_causal=False):
    s = query @ key.transpose(-2, -1) / math.sqrt(query.size(-1))
    if is_causal:
        s = s.masked_fill(~torch.ones(s.shape[-2:], dtype=torch.bool, device=s.device).tril(), -math.inf)
    return torch.softmax(s, dim=-1) @ value
