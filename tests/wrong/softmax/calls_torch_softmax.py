# cell: softmax
# loses: test_softmax_implemented
# Delegates to torch: correct numbers, but not the student's implementation.
def softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    return torch.softmax(x, dim=dim)
