# cell: masked_attention
# loses: test_masked_attention_matches_torch
# Its own softmax without subtracting the row maximum: exp overflows for large real scores.
def masked_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                     attn_mask: torch.Tensor | None = None) -> torch.Tensor:
    scores = query @ key.transpose(-2, -1) / math.sqrt(query.shape[-1])
    e = torch.exp(scores)
    if attn_mask is not None:
        e = e * attn_mask
    total = e.sum(dim=-1, keepdim=True)
    return (e / torch.where(total > 0, total, torch.ones_like(total))) @ value
