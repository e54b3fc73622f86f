# cell: attend
# loses: test_attend_weights test_attend_context test_attend_mask
# Softmax over the batch dimension instead of the source positions.
def attend(state, enc, mask=None):
    scores = (enc @ state.unsqueeze(-1)).squeeze(-1) / math.sqrt(state.size(-1))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=0)
    return (weights.unsqueeze(-2) @ enc).squeeze(-2), weights
