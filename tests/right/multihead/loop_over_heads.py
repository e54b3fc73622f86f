# cell: multihead
# Heads sliced out and stacked in Python loops; one attention call per head.
def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    d_model = x.shape[-1]
    if d_model % num_heads:
        raise ValueError("d_model must be divisible by num_heads")
    E = d_model // num_heads
    return torch.stack([x[..., h * E:(h + 1) * E] for h in range(num_heads)], dim=1)  # (B, H, T, E)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    return torch.cat([x[:, h] for h in range(x.shape[1])], dim=-1)  # (B, T, H * E)


def multi_head_attention(query, key, value, w_q, w_k, w_v, w_o, b_q, b_k, b_v, b_o, num_heads, attn_mask=None):
    q = split_heads(query @ w_q.T + b_q, num_heads)
    k = split_heads(key @ w_k.T + b_k, num_heads)
    v = split_heads(value @ w_v.T + b_v, num_heads)
    heads = []
    for h in range(num_heads):
        mask = None
        if attn_mask is not None:
            mask = attn_mask[:, h] if attn_mask.dim() == 4 and attn_mask.shape[1] > 1 else attn_mask
            mask = mask.squeeze(1) if mask.dim() == 4 else mask
        heads.append(attention(q[:, h], k[:, h], v[:, h], mask))
    return merge_heads(torch.stack(heads, dim=1)) @ w_o.T + b_o
