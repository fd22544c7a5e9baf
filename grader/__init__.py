"""Local grader of the assignment: public tests with points and a summary table.

Run ``python -m grader`` from the handout folder (see ``grader/__main__.py``).

Modules, in layers (each imports only those above it):
    files     where the handout's files are (``ROOT``) and their digests
    results   TestResult / Results: the test results, the table, the JSON passed between processes
    wire, budget, container   the sandbox's channel format, time budget and memory limits
    failures  what can go wrong in a check and the message that says so (no pytest, no sandbox)
    sandbox   runs the student's code in a separate, limited process (``worker`` is that process)
    compare   the fixtures and the numeric comparisons the tests make (``assert_close`` ...)
    probes    the grader code that calls the student's functions, inside that process
    diagnoses  what a wrong result's numbers say (direction, scale, steps, which parameters): evidence -> findings
    feedback  which known mistake a wrong result looks like (``assert_expected``)
    plugin    pytest plugin: ``points``, ``Parts``, failures -> short messages
    runner    runs the tests in a child process, reads their results, flags changed grader files
    gradescope  grades one submission (the autograder bundle's entry point)
    submission  what a submission zip is: its name, layout and manifest
    fill_report  fills report.md from the student's runs (``python -m grader report``)
    submit    checks everything, then writes the submission zip (``python -m grader submit``)
    recheck   re-evaluates the submitted weights with the student's code (submit's child process)
    late      the late-penalty arithmetic (stdlib only)
    version   the handout version (grader/VERSION, written by the release)
    tests/    the public tests; fixtures/ their reference numbers
"""
