# cell: online_softmax_update
# loses: test_online_update_first_block test_online_update_rescales test_tiled_matches_torch
# Tracks the max but never uses it: sums exp(s) directly, which overflows for large scores.
def online_softmax_update(m, l, acc, scores, values):
    m_new = torch.maximum(m, scores.amax(dim=-1))
    p = torch.exp(scores)
    return m_new, l + p.sum(dim=-1), acc + p @ values
