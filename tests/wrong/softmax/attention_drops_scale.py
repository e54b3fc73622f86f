# cell: attention
# loses: test_attention_scale
# scaled_dot_product_attention does not pass `scale` on to attention_weights.
def attention_weights(query: torch.Tensor, key: torch.Tensor, scale: float | None = None) -> torch.Tensor:
    if scale is None:
        scale = query.shape[-1] ** -0.5
    scores = query @ key.transpose(-2, -1) * scale
    return softmax(scores, dim=-1)


def scaled_dot_product_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scale: float | None = None
) -> torch.Tensor:
    return attention_weights(query, key) @ value
