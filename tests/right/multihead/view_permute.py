# cell: multihead
# view + permute, and contiguous() + view back; the layer with torch.nn.functional.linear.
def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    B, T, d_model = x.shape
    if d_model % num_heads:
        raise ValueError("num_heads must divide d_model")
    return x.view(B, T, num_heads, d_model // num_heads).permute(0, 2, 1, 3)  # (B, H, T, E)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    B, H, T, E = x.shape
    return x.permute(0, 2, 1, 3).contiguous().view(B, T, H * E)  # (B, T, H*E)


def multi_head_attention(query, key, value, w_q, w_k, w_v, w_o, b_q, b_k, b_v, b_o, num_heads, attn_mask=None):
    F = torch.nn.functional
    q = split_heads(F.linear(query, w_q, b_q), num_heads)
    k = split_heads(F.linear(key, w_k, b_k), num_heads)
    v = split_heads(F.linear(value, w_v, b_v), num_heads)
    return F.linear(merge_heads(attention(q, k, v, attn_mask)), w_o, b_o)
