# cell: attention
# loses: test_attention_weights test_attention_scale test_attention_output test_attention_properties
# Normalises over the queries (dim -2) instead of over the keys.
def attention_weights(query: torch.Tensor, key: torch.Tensor, scale: float | None = None) -> torch.Tensor:
    if scale is None:
        scale = query.shape[-1] ** -0.5
    scores = query @ key.transpose(-2, -1) * scale
    return softmax(scores, dim=-2)


def scaled_dot_product_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scale: float | None = None
) -> torch.Tensor:
    return attention_weights(query, key, scale) @ value
