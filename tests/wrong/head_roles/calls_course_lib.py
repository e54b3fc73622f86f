# cell: previous_token
# loses: test_implemented
# Right numbers, but delegated to the course library the assignment asks you to write.
from course_lib.heads import previous_token_score as _library_score


def previous_token_score(attn, mask=None):
    return _library_score(attn, mask)
