"""jabtest.runner — the integration suites' runner (tests/run-integration.sh BUILD_DIR): runs every
tests/integration/test_*.py, one at a time in name order, with /usr/bin/python3 and BUILD_DIR,
prints their output as it comes, and ends with one line summing the suites' summary lines,
"integration: N passed, N failed". A suite that exits with an error status without counting a
failure (it crashed before its summary line) is one more failure. Exit status 0 when nothing
failed.

Usage: /usr/bin/python3 tests/integration/jabtest/runner.py BUILD_DIR"""

import glob
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = '/usr/bin/python3'   # Debian's python3-slixmpp is importable from the system Python only
SUMMARY = re.compile(r'.*: (\d+) passed, (\d+) failed$')


def run(path, build):
    """Runs one suite; its (passed, failed, exit status)."""
    proc = subprocess.Popen([PYTHON, path, build], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    last = ''
    for raw in proc.stdout:
        line = raw.decode('utf-8', 'replace').rstrip('\n')
        print(line, flush=True)
        if line.strip():
            last = line
    status = proc.wait()
    m = SUMMARY.match(last)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0), status


def main():
    if len(sys.argv) != 2:
        sys.exit('usage: tests/run-integration.sh BUILD_DIR')
    build = sys.argv[1]
    passed = failed = 0
    for path in sorted(glob.glob(os.path.join(HERE, 'test_*.py'))):
        (p, f), status = run(path, build)
        passed += p
        failed += f
        if status != 0 and f == 0:
            print('integration: %s exited with status %d' % (path, status), flush=True)
            failed += 1
    print('integration: %d passed, %d failed' % (passed, failed), flush=True)
    return 0 if failed == 0 else 1


if __name__ == '__main__':
    sys.exit(main())
