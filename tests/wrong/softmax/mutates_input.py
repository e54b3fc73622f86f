# cell: softmax
# loses: test_softmax_properties
# Subtracts the maximum in place: the caller's tensor is changed.
def softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    x.sub_(x.amax(dim=dim, keepdim=True))
    e = torch.exp(x)
    return e / e.sum(dim=dim, keepdim=True)
