# cell: attend
# loses: test_attend_context
# Detaches the attention weights: right numbers, but no gradient reaches the state, and the encoder's is incomplete.
def attend(state, enc, mask=None):
    scores = (enc @ state.unsqueeze(-1)).squeeze(-1) / math.sqrt(state.size(-1))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1).detach()
    return (weights.unsqueeze(-2) @ enc).squeeze(-2), weights
