# cell: multihead
# loses: test_mha_properties
# Detaches the attention weights: right numbers, but no gradient reaches the queries, keys, w_q, w_k, b_q, b_k.
def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    batch, length, d_model = x.shape
    if d_model % num_heads != 0:
        raise ValueError(f"d_model={d_model} is not divisible by num_heads={num_heads}")
    return x.reshape(batch, length, num_heads, d_model // num_heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    batch, heads, length, head_dim = x.shape
    return x.transpose(1, 2).reshape(batch, length, heads * head_dim)


def multi_head_attention(query, key, value, w_q, w_k, w_v, w_o, b_q, b_k, b_v, b_o, num_heads, attn_mask=None):
    q = split_heads(query @ w_q.T + b_q, num_heads)
    k = split_heads(key @ w_k.T + b_k, num_heads)
    v = split_heads(value @ w_v.T + b_v, num_heads)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if attn_mask is not None:
        scores = scores.masked_fill(~attn_mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1).detach()
    return merge_heads(weights @ v) @ w_o.T + b_o
