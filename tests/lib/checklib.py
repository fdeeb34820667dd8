"""A minimal check runner shared by podsnoop's Python integration tests.

A test module keeps each check a separate function that raises
AssertionError with a clear message, and offers `run(t)`, which calls
`t.check(name, fn, *args)` for each. Run standalone, it ends with
`sys.exit(main(run))`, which prints one line per check (`ok NAME` or
`FAIL NAME: reason`) and the closing `N passed, N failed` line.
"""

import signal
import sys
import time
import traceback


class Checks:
    """Runs checks and counts them. Any object with the same check() method
    can stand in for it (e.g. a shared runner's)."""

    def __init__(self, out=None, verbose=False):
        self.out = out or sys.stdout
        self.verbose = verbose
        self.passed = 0
        self.failed = 0
        self.results = []          # (name, ok, reason, seconds)

    def check(self, name, fn, *args, **kwargs):
        """Run fn(*args, **kwargs); returns True if it did not raise."""
        t0 = time.monotonic()
        try:
            fn(*args, **kwargs)
        except AssertionError as e:
            reason = str(e) or "assertion failed"
        except Exception as e:  # noqa: BLE001 - an error in a check fails it
            reason = "%s: %s" % (type(e).__name__, e)
            if self.verbose:
                reason += "\n" + traceback.format_exc()
        else:
            dt = time.monotonic() - t0
            self.passed += 1
            self.results.append((name, True, "", dt))
            print("ok %s" % name, file=self.out, flush=True)
            return True
        dt = time.monotonic() - t0
        self.failed += 1
        self.results.append((name, False, reason, dt))
        # keep one line per check: indent any continuation lines
        print("FAIL %s: %s" % (name, reason.replace("\n", "\n    ")), file=self.out, flush=True)
        return False

    def summary(self):
        return "%d passed, %d failed" % (self.passed, self.failed)


def main(run, argv=None):
    """Standalone entry point: run(Checks()), print timing and the summary
    line last; returns the exit status (0 only if all passed and some ran)."""
    argv = sys.argv[1:] if argv is None else argv
    t = Checks(verbose="-v" in argv)
    t0 = time.monotonic()

    def on_term(signum, _frame):
        # unwind through the test's finally blocks so it cleans up
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, on_term)
    try:
        run(t)
    except Exception as e:  # noqa: BLE001 - a broken run is a failure
        t.failed += 1
        print("FAIL run: %s: %s" % (type(e).__name__, e), flush=True)
    except BaseException as e:  # SIGTERM, ^C: report, then let it end the run
        t.failed += 1
        print("FAIL run: interrupted (%s)" % type(e).__name__, flush=True)
        raise
    finally:
        print("# took %.1fs" % (time.monotonic() - t0), flush=True)
        print(t.summary(), flush=True)
    return 0 if t.failed == 0 and t.passed > 0 else 1
