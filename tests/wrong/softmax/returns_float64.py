# cell: softmax
# loses: test_softmax_matches_torch test_softmax_properties
# Computes in float64 and forgets to cast back: the dtype changes.
def softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    z = x.double() - x.double().amax(dim=dim, keepdim=True)
    e = torch.exp(z)
    return e / e.sum(dim=dim, keepdim=True)
