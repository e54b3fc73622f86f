# cell: attention
# loses: test_attention_weights test_attention_scale test_attention_output test_attention_properties
# Applies the scale to the weights after the softmax: rows no longer sum to 1.
def attention_weights(query: torch.Tensor, key: torch.Tensor, scale: float | None = None) -> torch.Tensor:
    if scale is None:
        scale = query.shape[-1] ** -0.5
    scores = query @ key.transpose(-2, -1)
    return softmax(scores, dim=-1) * scale


def scaled_dot_product_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scale: float | None = None
) -> torch.Tensor:
    return attention_weights(query, key, scale) @ value
