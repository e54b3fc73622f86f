# cell: softmax
# `.max(...).values`, an in-place exp on a fresh tensor and a multiplication by the reciprocal.
def softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    e = x - x.max(dim=dim, keepdim=True).values
    e.exp_()
    return e * e.sum(dim=dim, keepdim=True).reciprocal()
