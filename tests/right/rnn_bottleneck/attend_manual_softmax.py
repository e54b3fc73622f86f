# cell: attend
# Its own stable softmax (max subtracted), padding zeroed by multiplication, a broadcast sum.
def attend(
    state: torch.Tensor, enc: torch.Tensor, mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    scores = (enc * state.unsqueeze(-2)).sum(-1) * state.size(-1) ** -0.5  # (..., S)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    e = torch.exp(scores - scores.amax(dim=-1, keepdim=True))
    if mask is not None:
        e = e * mask
    weights = e / e.sum(dim=-1, keepdim=True)
    return (weights.unsqueeze(-1) * enc).sum(-2), weights
