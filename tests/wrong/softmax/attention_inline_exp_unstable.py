# cell: attention
# loses: test_attention_stable
# Writes its own exp / sum instead of calling the stable softmax: overflows on huge scores.
def attention_weights(query: torch.Tensor, key: torch.Tensor, scale: float | None = None) -> torch.Tensor:
    if scale is None:
        scale = query.shape[-1] ** -0.5
    e = torch.exp(query @ key.transpose(-2, -1) * scale)
    return e / e.sum(dim=-1, keepdim=True)


def scaled_dot_product_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scale: float | None = None
) -> torch.Tensor:
    return attention_weights(query, key, scale) @ value
