# cell: attend
# loses: test_attend_mask
# Reads the mask the wrong way round: hides the real tokens, attends to the padding.
def attend(state, enc, mask=None):
    scores = (enc @ state.unsqueeze(-1)).squeeze(-1) / math.sqrt(state.size(-1))
    if mask is not None:
        scores = scores.masked_fill(mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return (weights.unsqueeze(-2) @ enc).squeeze(-2), weights
