# cell: softmax
# loses: test_softmax_stable
# The textbook formula: overflows to inf/inf = nan for logits above ~88 in float32.
def softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    e = torch.exp(x)
    return e / e.sum(dim=dim, keepdim=True)
