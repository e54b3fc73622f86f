# cell: attention
# loses: test_attention_output test_attention_properties
# Multiplies the values by the transposed weights: sums over the queries, not the keys.
def attention_weights(query: torch.Tensor, key: torch.Tensor, scale: float | None = None) -> torch.Tensor:
    if scale is None:
        scale = query.shape[-1] ** -0.5
    scores = query @ key.transpose(-2, -1) * scale
    return softmax(scores, dim=-1)


def scaled_dot_product_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scale: float | None = None
) -> torch.Tensor:
    return attention_weights(query, key, scale).transpose(-2, -1) @ value
