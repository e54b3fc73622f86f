# cell: tiled_attention
# loses: test_tiled_properties
# Scales the queries with /= (in place): right numbers, but the caller's query tensor is divided by sqrt(E).
def tiled_attention(query, key, value, block_size=16, is_causal=False):
    L, S = query.size(-2), key.size(-2)
    q = query
    q /= math.sqrt(query.size(-1))
    kw = {"dtype": query.dtype, "device": query.device}
    blocks = []
    for q0 in range(0, L, block_size):
        q1 = min(q0 + block_size, L)
        m = torch.full(query.shape[:-2] + (q1 - q0,), -math.inf, **kw)
        l = torch.zeros(query.shape[:-2] + (q1 - q0,), **kw)
        acc = torch.zeros(query.shape[:-2] + (q1 - q0, value.size(-1)), **kw)
        stop = min(S, q1) if is_causal else S
        for k0 in range(0, stop, block_size):
            k1 = min(k0 + block_size, stop)
            s = q[..., q0:q1, :] @ key[..., k0:k1, :].transpose(-2, -1)
            if is_causal:
                i = torch.arange(q0, q1, device=query.device)[:, None]
                j = torch.arange(k0, k1, device=query.device)
                s = s.masked_fill(j > i, -math.inf)
            m, l, acc = online_softmax_update(m, l, acc, s, value[..., k0:k1, :])
        blocks.append(acc / l.unsqueeze(-1))
    return torch.cat(blocks, dim=-2)
