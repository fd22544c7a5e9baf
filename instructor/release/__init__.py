"""The release tool: one instructor source, two products: the student handout and the autograder bundle.

Layers, each usable on its own:
    markers   solution markers -> stubs (pure text transformation, MarkerError with file:line)
    leaks     leak checks on a built handout (token streams, layout allowlist, instructor files)
    config    instructor/course.toml and the README's {{ placeholders }}
    archive   byte-reproducible zip / npz writing
    build     assembles the handout in memory, runs the guards, writes dist/handout/ and handout.zip
    bundle    dist/autograder.zip for Gradescope (setup.sh, run_autograder, source/ = the handout)
    __main__  the command: python -m instructor.release
"""
