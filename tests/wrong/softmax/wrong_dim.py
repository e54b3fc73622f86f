# cell: softmax
# loses: test_softmax_matches_torch test_softmax_properties test_softmax_stable
# Ignores `dim` and always normalises over the last dimension.
def softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    z = x - x.amax(dim=-1, keepdim=True)
    e = torch.exp(z)
    return e / e.sum(dim=-1, keepdim=True)
