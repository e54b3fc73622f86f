# cell: attend
# einsum for the scores and the context, torch.where for the padding.
def attend(
    state: torch.Tensor, enc: torch.Tensor, mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    scores = torch.einsum("...d,...sd->...s", state, enc) / math.sqrt(state.shape[-1])
    if mask is not None:
        scores = torch.where(mask, scores, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return torch.einsum("...s,...sd->...d", weights, enc), weights
