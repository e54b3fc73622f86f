# cell: attention
# loses: test_attention_weights test_attention_scale test_attention_output
# Forgets the scale: the scores are never divided by sqrt(E) and `scale` is ignored.
def attention_weights(query: torch.Tensor, key: torch.Tensor, scale: float | None = None) -> torch.Tensor:
    scores = query @ key.transpose(-2, -1)
    return softmax(scores, dim=-1)


def scaled_dot_product_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scale: float | None = None
) -> torch.Tensor:
    return attention_weights(query, key, scale) @ value
