# cell: online_softmax_update
# alpha through torch.where (1 where nothing changes), einsum for the block's weighted values.
def online_softmax_update(m: torch.Tensor, l: torch.Tensor, acc: torch.Tensor,
                          scores: torch.Tensor, values: torch.Tensor):
    m_new = torch.max(m, scores.max(dim=-1).values)
    alpha = torch.where(m == m_new, torch.ones_like(m), torch.exp(m - m_new))
    p = (scores - m_new[..., None]).exp()
    l_new = l * alpha + p.sum(-1)
    acc_new = acc * alpha[..., None] + torch.einsum("...rb,...be->...re", p, values)
    return m_new, l_new, acc_new
