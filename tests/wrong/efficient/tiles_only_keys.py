# cell: tiled_attention
# loses: test_tiled_never_builds_scores
# Streams over blocks of keys but keeps every query in one block: the tiles are L x block_size.
def tiled_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                    block_size: int = 16, is_causal: bool = False) -> torch.Tensor:
    L, S = query.size(-2), key.size(-2)
    q = query / math.sqrt(query.size(-1))
    kw = {"dtype": query.dtype, "device": query.device}
    m = torch.full(query.shape[:-1], -math.inf, **kw)
    l = torch.zeros(query.shape[:-1], **kw)
    acc = torch.zeros(query.shape[:-1] + (value.size(-1),), **kw)
    i = torch.arange(L, device=query.device)[:, None]
    for k0 in range(0, S, block_size):
        k1 = min(k0 + block_size, S)
        s = q @ key[..., k0:k1, :].transpose(-2, -1)  # (..., L, bk)
        if is_causal:
            s = s.masked_fill(torch.arange(k0, k1, device=query.device) > i, -math.inf)
        m, l, acc = online_softmax_update(m, l, acc, s, value[..., k0:k1, :])
    return acc / l.unsqueeze(-1)
