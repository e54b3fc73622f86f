# cell: attention
# loses: test_attention_properties
# Computes in float64 for accuracy and never casts back: float32 inputs give float64 results.
def attention_weights(query: torch.Tensor, key: torch.Tensor, scale: float | None = None) -> torch.Tensor:
    query, key = query.double(), key.double()
    if scale is None:
        scale = query.shape[-1] ** -0.5
    scores = query @ key.transpose(-2, -1) * scale
    return softmax(scores, dim=-1)


def scaled_dot_product_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scale: float | None = None
) -> torch.Tensor:
    return attention_weights(query, key, scale) @ value.double()
