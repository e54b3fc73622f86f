# cell: layer_norm
# loses: test_layer_norm
# x.var() divides by d - 1 (the unbiased estimate); LayerNorm uses the biased variance of the d features.
def layer_norm(x, weight, bias, eps=1e-5):
    mean = x.mean(dim=-1, keepdim=True)
    var = x.var(dim=-1, keepdim=True)
    return weight * (x - mean) / torch.sqrt(var + eps) + bias
