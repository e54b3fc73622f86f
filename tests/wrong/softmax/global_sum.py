# cell: softmax
# loses: test_softmax_matches_torch test_softmax_properties test_softmax_stable test_softmax_implemented
# Normalises by the sum over the whole tensor instead of along `dim`.
def softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    e = torch.exp(x - x.max())
    return e / e.sum()
