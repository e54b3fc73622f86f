# cell: tiled_attention
# loses: test_tiled_never_builds_scores
# Right numbers, but tiles of a fixed 32 x 32 whatever block_size asks for.
def tiled_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                    block_size: int = 16, is_causal: bool = False) -> torch.Tensor:
    block = 32
    L, S = query.size(-2), key.size(-2)
    q = query / math.sqrt(query.size(-1))
    kw = {"dtype": query.dtype, "device": query.device}
    blocks = []
    for q0 in range(0, L, block):
        q1 = min(q0 + block, L)
        m = torch.full(query.shape[:-2] + (q1 - q0,), -math.inf, **kw)
        l = torch.zeros(query.shape[:-2] + (q1 - q0,), **kw)
        acc = torch.zeros(query.shape[:-2] + (q1 - q0, value.size(-1)), **kw)
        stop = min(S, q1) if is_causal else S
        for k0 in range(0, stop, block):
            k1 = min(k0 + block, stop)
            s = q[..., q0:q1, :] @ key[..., k0:k1, :].transpose(-2, -1)
            if is_causal:
                i = torch.arange(q0, q1, device=query.device)[:, None]
                s = s.masked_fill(torch.arange(k0, k1, device=query.device) > i, -math.inf)
            m, l, acc = online_softmax_update(m, l, acc, s, value[..., k0:k1, :])
        blocks.append(acc / l.unsqueeze(-1))
    return torch.cat(blocks, dim=-2)
