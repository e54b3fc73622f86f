# cell: softmax
# loses: test_softmax_stable
# Subtracts the mean: still overflows when one logit is far above the others.
def softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    e = torch.exp(x - x.mean(dim=dim, keepdim=True))
    return e / e.sum(dim=dim, keepdim=True)
