# cell: layer_norm
# loses: test_layer_norm
# Divides by std + eps instead of sqrt(var + eps).
def layer_norm(x, weight, bias, eps=1e-5):
    mean = x.mean(dim=-1, keepdim=True)
    std = ((x - mean) ** 2).mean(dim=-1, keepdim=True).sqrt()
    return weight * (x - mean) / (std + eps) + bias
