"""The `transformer` assignment graded end to end: see tests/catalogue.py."""

from catalogue import *  # noqa: F403  (its fixtures, tests and pytest_generate_tests)

ASSIGNMENT = "transformer"
