"""Run one atheris fuzz target (tests/fuzz/atheris_targets.py) under libFuzzer.

    python -m tests.fuzz.atheris_run                      # list the targets
    python -m tests.fuzz.atheris_run TARGET [--instrument-all] [LIBFUZZER ARGS...]

for instance ``python -m tests.fuzz.atheris_run aws_chunked -max_total_time=600
corpus/aws_chunked``. Every argument after TARGET goes to libFuzzer
(``-runs=N``, ``-seed=N``, ``-max_total_time=S``, ``-max_len=N``, corpus
directories, ``-artifact_prefix=DIR/`` for where a crash input is written;
``-help=1`` lists them). A crash -- an assertion or an exception of an
undocumented type -- prints its traceback and exits non-zero, leaving the
input in ``crash-<sha1>`` to replay with ``python -m tests.fuzz.atheris_run
TARGET crash-<sha1>``.

The blobstore and blobstore_api packages (and the targets) are instrumented
as they are imported, so coverage guides the search through the service's
own code. ``--instrument-all`` also instruments everything imported before
fuzzing starts (the standard library's email / strptime parsers, falcon,
defusedxml; some 16,000 functions): about a minute to start and slower to
run, but guided through those too.

libFuzzer ends the process without Python's exit handlers, so the fuzzer
runs in a child process whose TMPDIR (where targets keep their stores) is a
directory this process removes afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import atheris

USAGE = "usage: python -m tests.fuzz.atheris_run TARGET [--instrument-all] [LIBFUZZER ARGS...]"


def main(argv: list[str]) -> int:
    args = argv[1:]
    listing = not args or args[0].startswith("-")
    if not listing and os.environ.get(_CHILD) is None:
        return _in_child(argv)
    instrument_all = "--instrument-all" in args
    args = [a for a in args if a != "--instrument-all"]
    # Instrument the service's packages as the targets import them (nothing
    # of blobstore is imported before this point).
    with atheris.instrument_imports(include=["blobstore", "blobstore_api", "tests"]):
        from tests.fuzz.atheris_targets import TARGETS
    if listing:
        out = sys.stdout if not args else sys.stderr
        print(f"{USAGE}\n\ntargets:", file=out)
        width = max(map(len, TARGETS))
        for name, target in TARGETS.items():
            print(f"  {name:<{width}}  {target.doc}", file=out)
        return 0 if not args else 2
    name = args.pop(0)
    target = TARGETS.get(name)
    if target is None:
        print(
            f"unknown target {name!r}; run without arguments to list them",
            file=sys.stderr,
        )
        return 2
    if target.setup is not None:
        target.setup()
    if instrument_all:
        atheris.instrument_all()
    atheris.Setup([argv[0], *args], target.run)
    atheris.Fuzz()  # exits the process when libFuzzer is done
    return 0


_CHILD = "BLOBSTORE_ATHERIS_CHILD"


def _in_child(argv: list[str]) -> int:
    """Run this command again in a child with a TMPDIR of its own; remove
    that directory when the child is done; return its exit status."""
    with tempfile.TemporaryDirectory(prefix="blobstore-atheris-") as tmp:
        env = {**os.environ, _CHILD: "1", "TMPDIR": tmp}
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.fuzz.atheris_run", *argv[1:]], env=env
        )
        while True:
            try:
                return child.wait()
            except KeyboardInterrupt:  # the child has it too: let it finish
                continue


if __name__ == "__main__":
    sys.exit(main(sys.argv))
