# cell: attend
# loses: test_attend_mask
# Flips the mask in place (logical_not_) to find the padding: right weights, but the caller's mask is inverted.
def attend(state, enc, mask=None):
    scores = (enc @ state.unsqueeze(-1)).squeeze(-1) / math.sqrt(state.size(-1))
    if mask is not None:
        scores = scores.masked_fill(mask.logical_not_(), float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return (weights.unsqueeze(-2) @ enc).squeeze(-2), weights
