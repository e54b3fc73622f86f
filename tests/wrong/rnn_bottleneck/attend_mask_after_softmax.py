# cell: attend
# loses: test_attend_mask
# Zeroes the padding after the softmax: the remaining weights no longer sum to 1.
def attend(state, enc, mask=None):
    scores = (enc @ state.unsqueeze(-1)).squeeze(-1) / math.sqrt(state.size(-1))
    weights = torch.softmax(scores, dim=-1)
    if mask is not None:
        weights = weights * mask
    return (weights.unsqueeze(-2) @ enc).squeeze(-2), weights
