# cell: attention
# loses: test_attention_weights test_attention_output
# Transposes dims 1 and 2 of the keys, as if they were always (batch, S, E).
def attention_weights(query: torch.Tensor, key: torch.Tensor, scale: float | None = None) -> torch.Tensor:
    if scale is None:
        scale = query.shape[-1] ** -0.5
    scores = query @ key.transpose(1, 2) * scale
    return softmax(scores, dim=-1)


def scaled_dot_product_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scale: float | None = None
) -> torch.Tensor:
    return attention_weights(query, key, scale) @ value
