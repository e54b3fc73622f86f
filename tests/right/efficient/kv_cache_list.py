# cell: kv_cache
# Keeps the appended chunks in lists and concatenates them on every call.
class KVCache:
    """The keys ``(B, Hkv, S, E)`` and values ``(B, Hkv, S, Ev)`` of the ``S`` tokens seen so far."""

    def __init__(self):
        self.keys = None
        self.values = None
        self._chunks = []

    def __len__(self) -> int:
        return sum(k.shape[2] for k, _ in self._chunks)

    def append(self, key: torch.Tensor, value: torch.Tensor):
        self._chunks.append((key, value))
        self.keys = torch.cat([k for k, _ in self._chunks], dim=2)
        self.values = torch.cat([v for _, v in self._chunks], dim=2)
        return self.keys, self.values
