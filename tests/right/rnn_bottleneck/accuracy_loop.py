# cell: accuracy
# A Python loop over the sequences (flattened leading dimensions): slow, but right.
def accuracy(
    pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None
) -> tuple[float, float]:
    T = target.shape[-1]
    p, t = pred.reshape(-1, T).tolist(), target.reshape(-1, T).tolist()
    v = [[True] * T] * len(t) if valid is None else valid.reshape(-1, T).tolist()
    exact = right = real = 0
    for ps, ts, vs in zip(p, t, v):
        ok = [a == b for a, b, keep in zip(ps, ts, vs) if keep]
        exact += all(ok)
        right += sum(ok)
        real += len(ok)
    return exact / len(t), right / real
