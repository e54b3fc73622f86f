# cell: tiled_attention
# Writes each query block into a preallocated output, scales the keys, masks with a tril tile.
def tiled_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                    block_size: int = 16, is_causal: bool = False) -> torch.Tensor:
    L, S, E = query.size(-2), key.size(-2), query.size(-1)
    k_scaled = key * E ** -0.5
    out = query.new_empty(query.shape[:-1] + (value.size(-1),))
    for q0 in range(0, L, block_size):
        q1 = min(q0 + block_size, L)
        qb = query[..., q0:q1, :]
        m = qb.new_full(qb.shape[:-1], float("-inf"))
        l = qb.new_zeros(qb.shape[:-1])
        acc = qb.new_zeros(qb.shape[:-1] + (value.size(-1),))
        for k0 in range(0, S, block_size):
            if is_causal and k0 >= q1:
                break
            k1 = min(k0 + block_size, S)
            s = torch.einsum("...qe,...ke->...qk", qb, k_scaled[..., k0:k1, :])
            if is_causal:
                allowed = torch.ones(q1 - q0, k1 - k0, dtype=torch.bool, device=query.device)
                s = s.masked_fill(~allowed.tril(diagonal=q0 - k0), float("-inf"))
            m, l, acc = online_softmax_update(m, l, acc, s, value[..., k0:k1, :])
        out[..., q0:q1, :] = acc / l[..., None]
    return out
