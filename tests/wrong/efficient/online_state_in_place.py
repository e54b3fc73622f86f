# cell: online_softmax_update
# loses: test_online_update_rescales
# Updates the running sums in place (l.mul_, acc.mul_) and returns them: right numbers, but the caller's state is changed.
def online_softmax_update(m, l, acc, scores, values):
    m_new = torch.maximum(m, scores.amax(dim=-1))
    alpha = torch.exp(m - m_new)
    p = torch.exp(scores - m_new.unsqueeze(-1))
    l.mul_(alpha).add_(p.sum(dim=-1))
    acc.mul_(alpha.unsqueeze(-1)).add_(p @ values)
    return m_new, l, acc
