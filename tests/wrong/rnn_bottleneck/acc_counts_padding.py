# cell: accuracy
# loses: test_accuracy_padding
# Ignores the padding mask: junk in the padding makes right sequences wrong, and the
# per-token accuracy divides by B * T.
def accuracy(pred, target, valid=None):
    right = pred == target
    return float(right.all(dim=-1).float().mean()), float(right.float().mean())
