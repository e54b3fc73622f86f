# cell: online_softmax_update
# loses: test_online_update_rescales test_tiled_properties
# Treats the block's weights exp(s - m) as constants (detached): right numbers, but no gradient reaches the scores.
def online_softmax_update(m, l, acc, scores, values):
    m_new = torch.maximum(m, scores.amax(dim=-1))
    alpha = torch.exp(m - m_new)
    p = torch.exp(scores - m_new.unsqueeze(-1)).detach()
    return m_new, alpha * l + p.sum(dim=-1), alpha.unsqueeze(-1) * acc + p @ values
