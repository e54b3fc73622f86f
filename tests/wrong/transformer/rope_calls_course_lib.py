# cell: rope
# loses: test_implemented
# Right numbers, but delegated to the course library the assignment asks you to write.
import course_lib as _cl


def rope(x, positions, base=10000.0):
    cos, sin = _cl.rope_frequencies(x.shape[-1], int(positions.max()) + 1, base, dtype=x.dtype)
    return _cl.apply_rope(x, cos[positions], sin[positions])
