# cell: multihead
# unflatten/flatten for the heads; einsum projections and its own attention with torch.where.
def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    if x.shape[-1] % num_heads != 0:
        raise ValueError(f"{num_heads} heads do not divide d_model={x.shape[-1]}")
    return x.unflatten(-1, (num_heads, -1)).transpose(-3, -2)  # (B, H, T, E)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    return x.transpose(-3, -2).flatten(-2)  # (B, T, H * E)


def multi_head_attention(query, key, value, w_q, w_k, w_v, w_o, b_q, b_k, b_v, b_o, num_heads, attn_mask=None):
    q = split_heads(torch.einsum("btd,ed->bte", query, w_q) + b_q, num_heads)
    k = split_heads(torch.einsum("bsd,ed->bse", key, w_k) + b_k, num_heads)
    v = split_heads(torch.einsum("bsd,ed->bse", value, w_v) + b_v, num_heads)
    scores = torch.einsum("bhle,bhse->bhls", q, k) / math.sqrt(q.shape[-1])
    if attn_mask is not None:
        scores = torch.where(attn_mask, scores, float("-inf"))
    out = merge_heads(torch.softmax(scores, dim=-1) @ v)
    return torch.einsum("btd,ed->bte", out, w_o) + b_o
