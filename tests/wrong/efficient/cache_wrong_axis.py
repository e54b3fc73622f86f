# cell: kv_cache
# loses: test_kv_cache_append test_decode_matches_full_causal
# Concatenates the new tokens along the head axis (1) instead of the sequence axis (2).
class KVCache:
    def __init__(self):
        self.keys = None
        self.values = None

    def __len__(self) -> int:
        return 0 if self.keys is None else self.keys.size(2)

    def append(self, key, value):
        if self.keys is None:
            self.keys, self.values = key, value
        else:
            self.keys = torch.cat([self.keys, key], dim=1)
            self.values = torch.cat([self.values, value], dim=1)
        return self.keys, self.values
