# cell: attend
# loses: test_attend_weights
# Its own softmax without subtracting the maximum: exp overflows for large real scores.
def attend(
    state: torch.Tensor, enc: torch.Tensor, mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    scores = (enc @ state.unsqueeze(-1)).squeeze(-1) / math.sqrt(state.size(-1))
    e = torch.exp(scores)
    if mask is not None:
        e = e * mask
    weights = e / e.sum(dim=-1, keepdim=True)
    return (weights.unsqueeze(-2) @ enc).squeeze(-2), weights
