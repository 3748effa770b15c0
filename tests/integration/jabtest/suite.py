"""jabtest.suite — what every suite's main does: reads BUILD_DIR (its first argument), turns
SIGTERM and SIGINT into an exit that runs the suite's cleanups (every program it started is
stopped by PID), runs the body with a Report, counts a crash of the body as one failure, prints
the summary line and exits with the report's status.

A suite file ends with:   if __name__ == '__main__': main('NAME', body)
where body(report, build) runs the checks."""

import importlib.util
import signal
import sys
import traceback

from .report import Failure, Report


def require_slixmpp(name):
    """Before a suite imports jabtest.client: without slixmpp, a not ok line and the summary."""
    if importlib.util.find_spec('slixmpp') is None:
        report = Report(name)
        report.not_ok('slixmpp is installed (python3-slixmpp: tools/deps.sh; run the suite with '
                      '/usr/bin/python3)')
        sys.exit(report.finish())


def _exit(signum, _frame):
    sys.exit(128 + signum)


def main(name, body):
    if len(sys.argv) < 2:
        sys.exit('usage: %s BUILD_DIR' % sys.argv[0])
    signal.signal(signal.SIGTERM, _exit)
    signal.signal(signal.SIGINT, _exit)
    report = Report(name)
    try:
        body(report, sys.argv[1])
    except Failure as e:
        report.not_ok('%s ran to its end' % name, str(e))
    except Exception:  # noqa: BLE001 — the crash is a failure, and the summary line still comes
        report.not_ok('%s ran to its end' % name, 'crashed:\n' + traceback.format_exc())
    sys.exit(report.finish())
