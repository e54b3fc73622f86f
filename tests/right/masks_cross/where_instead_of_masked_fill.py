# cell: masked_attention
# torch.where instead of masked_fill, the scale on the query, nan_to_num for the empty rows.
def masked_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                     attn_mask: torch.Tensor | None = None) -> torch.Tensor:
    scores = (query / math.sqrt(query.size(-1))) @ key.mT
    if attn_mask is not None:
        scores = torch.where(attn_mask, scores, float("-inf"))
    weights = torch.softmax(scores, dim=-1).nan_to_num(0.0)  # all -inf row: NaN -> 0
    return weights @ value
