"""The `softmax` assignment graded end to end: see tests/catalogue.py."""

from catalogue import *  # noqa: F403  (its fixtures, tests and pytest_generate_tests)

ASSIGNMENT = "softmax"


def test_warning_on_stderr_keeps_full_marks(course, grades):
    """A correct answer that prints a warning on stderr keeps full marks."""
    from nbgrader_helpers import max_points, nbgrader, scores

    assert grades["warns_on_stderr"] == max_points(course, ASSIGNMENT)
    # The same submission graded without the IgnorePattern rule loses points, so the
    # rule (not luck) is what keeps the marks.
    nbgrader(
        course,
        "autograde",
        ASSIGNMENT,
        "--force",
        "--student",
        "warns_on_stderr",
        "--IgnorePattern.enabled=False",
    )
    assert scores(course, ASSIGNMENT, "warns_on_stderr") != max_points(course, ASSIGNMENT)
