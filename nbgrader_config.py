"""nbgrader configuration for the course (the course root is this folder).

solutions/<assignment>/  nbgrader *source* notebooks: solutions and hidden tests
assignments/<assignment>/  the *release* students download, made by
                           `make assignments` (nbgrader generate_assignment); never edit it
"""

c = get_config()  # noqa: F821  (nbgrader injects get_config)

c.CourseDirectory.course_id = "attention-course"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "assignments"
c.CourseDirectory.db_url = "sqlite:///gradebook.db"

# What a student sees in place of a solution.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# nbgrader gives 0 to a test cell that wrote anything to stderr. torch (and numpy) print
# warnings there, so a correct answer that triggers e.g. a UserWarning would score 0.
# Drop stderr outputs that are Python warnings ("file.py:12: UserWarning: ...") before
# grading. Errors are not on stderr (they are `error` outputs) and still fail the cell.
c.IgnorePattern.enabled = True
c.IgnorePattern.pattern = r"(?m)^.*:\d+: \w*Warning: "

# One cell may not run forever; the whole notebook may not either.
c.Execute.timeout = 120
