"""jabtest.report — how a suite reports: one "ok - WHAT" or "not ok - WHAT" line per check (an ok
line may carry the figures the check measured, a not ok line says what was seen instead), "# ..."
notes, and the closing "NAME: N passed, N failed" line that tests/run-integration.sh sums; the
suite's exit status follows from the counts. Failure is the exception a scenario raises for the
expectation that stops it."""

import asyncio
import sys
import traceback


class Failure(Exception):
    """An expectation that did not hold; the text says what was seen instead."""


class Report:
    """The checks of one suite, or of one part of it run beside others (part()), whose lines are
    kept until merge() prints them in one block."""

    def __init__(self, name, buffered=False):
        self.name = name
        self.passed = 0
        self.failed = 0
        self.lines = [] if buffered else None

    def _print(self, line):
        if self.lines is None:
            print(line, flush=True)
        else:
            self.lines.append(line)

    def ok(self, what, figures=''):
        self.passed += 1
        figures = str(figures).strip()
        self._print('ok - %s%s' % (what, ' (%s)' % figures if figures else ''))

    def not_ok(self, what, why=''):
        """A failed check: a one-line why follows the name, a longer one is indented below."""
        self.failed += 1
        text = str(why).rstrip('\n')
        if '\n' in text:
            self._print('not ok - %s' % what)
            for line in text.splitlines():
                self._print('    ' + line)
        else:
            self._print('not ok - %s%s' % (what, ': ' + text if text else ''))

    def check(self, what, cond, detail='', *, figures=False):
        """ok when cond holds; detail says why on failure, and with figures=True it is what the
        check measured and is shown on the ok line too. Returns cond."""
        if cond:
            self.ok(what, detail if figures and detail != '' else '')
        else:
            self.not_ok(what, detail)
        return cond

    def note(self, text):
        self._print('# ' + text)

    def run(self, name, fn, *args):
        """Runs the scenario fn(*args), which reports its own checks: a Failure it raises, or a
        crash, is one not ok line named name, and the next scenario still runs."""
        try:
            return fn(*args)
        except Failure as e:
            self.not_ok(name, str(e))
        except Exception:  # noqa: BLE001 — one scenario's crash must not hide the others
            self.not_ok(name, 'crashed:\n' + traceback.format_exc())
        return None

    async def scenario(self, name, fn, timeout=30):
        """Runs one scenario coroutine function as run() does, bounded by timeout seconds."""
        try:
            await asyncio.wait_for(fn(), timeout)
        except Failure as e:
            self.not_ok(name, str(e))
        except asyncio.TimeoutError:
            self.not_ok(name, 'did not finish in %s s' % timeout)
        except Exception:  # noqa: BLE001
            self.not_ok(name, 'crashed:\n' + traceback.format_exc())

    # ---- parts run beside each other ----

    def part(self, name):
        """A report for one part of this suite, printed in one block by merge()."""
        return Report(name, buffered=True)

    def merge(self, part, ended=True):
        """Prints part's lines and its summary and counts its checks here. A part that did not
        run to its end (ended false: it crashed or ran out of time) is one more failure."""
        for line in part.lines:
            print(line, flush=True)
        print(part.summary(), flush=True)
        self.passed += part.passed
        self.failed += part.failed
        if not ended:
            self.not_ok('%s ran to its end' % part.name)

    # ---- the end ----

    def summary(self):
        return '%s: %d passed, %d failed' % (self.name, self.passed, self.failed)

    def finish(self):
        """Prints the summary line; returns the exit status (0: nothing failed)."""
        self._print(self.summary())
        sys.stdout.flush()
        return 0 if self.failed == 0 else 1
