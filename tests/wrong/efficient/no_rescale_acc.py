# cell: online_softmax_update
# loses: test_online_update_rescales test_tiled_matches_torch test_tiled_implemented
# Rescales the normaliser but forgets to rescale acc when the running max grows.
def online_softmax_update(m, l, acc, scores, values):
    m_new = torch.maximum(m, scores.amax(dim=-1))
    alpha = torch.exp(m - m_new)
    p = torch.exp(scores - m_new.unsqueeze(-1))
    return m_new, alpha * l + p.sum(dim=-1), acc + p @ values
