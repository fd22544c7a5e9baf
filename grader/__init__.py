"""Local grader of the assignment: public tests with points and a summary table.

Run ``python -m grader`` from the handout folder (see ``grader/__main__.py``).

Modules:
    report   TestResult / Results, the table, the JSON passed between processes
    plugin   pytest plugin: ``points`` decorator, failures -> short messages
    runner   runs the tests in a child process and reads their results
    checks   fixtures and numeric comparisons the tests use
    version  the handout version (grader/VERSION, written by the release)
    gradescope  grades one Gradescope submission (the autograder bundle's entry point)
    tests/   the public tests; fixtures/ their reference numbers
"""
