"""Public tests: a small, solid subset of what the autograder checks."""
