"""nnopt's benchmark harness: measures nnopt and peer tools side by side and writes BENCHMARKS.md.

Not part of the `nnopt` package. Run it from the repository root::

    python -m benchmarks                       # every section (several minutes), rewrites BENCHMARKS.md
    python -m benchmarks --only planning       # one section; the other sections of the file are kept
    python -m benchmarks --list                # the sections

Each section lives in its own module and is listed in `benchmarks.sections`.
"""
