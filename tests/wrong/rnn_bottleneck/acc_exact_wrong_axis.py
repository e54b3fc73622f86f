# cell: accuracy
# loses: test_accuracy_no_padding test_accuracy_padding
# Exact-sequence accuracy over the batch axis: "every sequence right at position t".
def accuracy(pred, target, valid=None):
    if valid is None:
        valid = torch.ones_like(target, dtype=torch.bool)
    right = (pred == target) & valid
    exact = (right | ~valid).all(dim=0).double().mean()
    return float(exact), float(right.sum() / valid.sum())
