# cell: softmax
# Moves `dim` last and normalises row by row in a Python loop: slow, but right.
def softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    moved = x.movedim(dim, -1)
    flat = moved.reshape(-1, moved.shape[-1])
    rows = []
    for row in flat:
        e = torch.exp(row - row.max())
        rows.append(e / e.sum())
    out = torch.stack(rows) if rows else flat.clone()
    return out.reshape(moved.shape).movedim(-1, dim)
