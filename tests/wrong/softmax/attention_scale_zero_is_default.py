# cell: attention
# loses: test_attention_scale
# `scale or ...`: an explicit scale=0.0 is treated as "no scale given".
def attention_weights(query: torch.Tensor, key: torch.Tensor, scale: float | None = None) -> torch.Tensor:
    scale = scale or query.shape[-1] ** -0.5
    scores = query @ key.transpose(-2, -1) * scale
    return softmax(scores, dim=-1)


def scaled_dot_product_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scale: float | None = None
) -> torch.Tensor:
    return attention_weights(query, key, scale) @ value
