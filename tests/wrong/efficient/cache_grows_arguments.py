# cell: kv_cache
# loses: test_kv_cache_append
# Grows the caller's new key/value tensors in place (Tensor.set_) into the whole cache: right cache, but the arguments are changed.
class KVCache:
    def __init__(self):
        self.keys = None
        self.values = None

    def __len__(self):
        return 0 if self.keys is None else self.keys.size(2)

    def append(self, key, value):
        if self.keys is not None:
            key.set_(torch.cat([self.keys, key], dim=2))
            value.set_(torch.cat([self.values, value], dim=2))
        self.keys, self.values = key, value
        return self.keys, self.values
