# cell: attend
# loses: test_attend_context
# Scales the query with state /= sqrt(d) (in place): right numbers, but the caller's state is divided by sqrt(d).
def attend(state, enc, mask=None):
    state /= math.sqrt(state.size(-1))
    scores = (enc @ state.unsqueeze(-1)).squeeze(-1)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return (weights.unsqueeze(-2) @ enc).squeeze(-2), weights
