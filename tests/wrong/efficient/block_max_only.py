# cell: online_softmax_update
# loses: test_online_update_rescales test_tiled_matches_torch
# Takes the block's own max as the new max, forgetting the running one: wrong when the max drops.
def online_softmax_update(m, l, acc, scores, values):
    m_new = scores.amax(dim=-1)
    alpha = torch.exp(m - m_new)
    p = torch.exp(scores - m_new.unsqueeze(-1))
    return m_new, alpha * l + p.sum(dim=-1), alpha.unsqueeze(-1) * acc + p @ values
