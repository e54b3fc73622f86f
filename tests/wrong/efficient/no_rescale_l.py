# cell: online_softmax_update
# loses: test_online_update_rescales test_tiled_matches_torch test_tiled_implemented
# Rescales acc but adds the new block to the old normaliser as if the max had not changed.
def online_softmax_update(m, l, acc, scores, values):
    m_new = torch.maximum(m, scores.amax(dim=-1))
    alpha = torch.exp(m - m_new)
    p = torch.exp(scores - m_new.unsqueeze(-1))
    return m_new, l + p.sum(dim=-1), alpha.unsqueeze(-1) * acc + p @ values
