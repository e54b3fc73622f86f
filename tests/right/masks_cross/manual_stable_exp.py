# cell: masked_attention
# Its own stable softmax: subtract the row max (0 where the row is empty), zero out the masked keys.
def masked_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                     attn_mask: torch.Tensor | None = None) -> torch.Tensor:
    scores = torch.einsum("...le,...se->...ls", query, key) / math.sqrt(query.shape[-1])
    if attn_mask is None:
        attn_mask = torch.ones((), dtype=torch.bool, device=query.device)
    scores = scores.masked_fill(~attn_mask, float("-inf"))
    m = scores.amax(dim=-1, keepdim=True)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    e = torch.exp(scores - m) * attn_mask
    total = e.sum(dim=-1, keepdim=True)
    return (e / torch.where(total > 0, total, torch.ones_like(total))) @ value
