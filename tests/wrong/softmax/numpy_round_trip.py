# cell: softmax
# loses: test_softmax_properties
# Computed in NumPy: right numbers on the CPU, but no gradient flows and a GPU tensor comes back on the CPU.
import numpy as np


def softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    a = x.detach().cpu().numpy()
    e = np.exp(a - a.max(axis=dim, keepdims=True))
    return torch.from_numpy(e / e.sum(axis=dim, keepdims=True)).to(x.dtype)
