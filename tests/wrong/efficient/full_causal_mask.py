# cell: tiled_attention
# loses: test_tiled_never_builds_scores
# Tiles the scores, but builds one full L x S causal mask up front and slices it per tile.
def tiled_attention(query, key, value, block_size=16, is_causal=False):
    L, S = query.size(-2), key.size(-2)
    q = query / math.sqrt(query.size(-1))
    kw = {"dtype": query.dtype, "device": query.device}
    allowed = torch.ones(L, S, dtype=torch.bool, device=query.device).tril()
    blocks = []
    for q0 in range(0, L, block_size):
        q1 = min(q0 + block_size, L)
        m = torch.full(query.shape[:-2] + (q1 - q0,), -math.inf, **kw)
        l = torch.zeros(query.shape[:-2] + (q1 - q0,), **kw)
        acc = torch.zeros(query.shape[:-2] + (q1 - q0, value.size(-1)), **kw)
        for k0 in range(0, S, block_size):
            k1 = min(k0 + block_size, S)
            s = q[..., q0:q1, :] @ key[..., k0:k1, :].transpose(-2, -1)
            if is_causal:
                s = s.masked_fill(~allowed[q0:q1, k0:k1], -math.inf)
            m, l, acc = online_softmax_update(m, l, acc, s, value[..., k0:k1, :])
        blocks.append(acc / l.unsqueeze(-1))
    return torch.cat(blocks, dim=-2)
