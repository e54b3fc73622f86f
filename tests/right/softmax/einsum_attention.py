# cell: attention
# einsum for both products, the scale applied to the queries first, `mT` for the transpose.
def attention_weights(query: torch.Tensor, key: torch.Tensor, scale: float | None = None) -> torch.Tensor:
    if scale is None:
        scale = query.size(-1) ** -0.5
    return softmax(torch.einsum("...le,...se->...ls", query * scale, key), dim=-1)


def scaled_dot_product_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scale: float | None = None
) -> torch.Tensor:
    w = attention_weights(query, key, scale)
    return torch.einsum("...ls,...sv->...lv", w, value)
