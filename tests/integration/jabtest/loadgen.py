"""jabtest.loadgen — tests/bench/loadgen (the load generator, BUILD/bench/loadgen) in the
background, its machine-readable stdout lines ("KIND key=value ...") parsed as they arrive and
time-stamped, so that a suite can wait for one kind (login, tick, round) while the load runs."""

import subprocess
import threading
import time

from .proc import wait_until


class Loadgen:
    def __init__(self, binary, args, log_path):
        self.lines = []
        self.lock = threading.Lock()
        self.err = open(log_path, 'ab')
        self.proc = subprocess.Popen([binary] + args, stdout=subprocess.PIPE, stderr=self.err,
                                     stdin=subprocess.DEVNULL, text=True, bufsize=1)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            parts = line.split()
            if not parts:
                continue
            rec = {'kind': parts[0], 'at': time.monotonic()}
            for p in parts[1:]:
                k, _, v = p.partition('=')
                try:
                    rec[k] = float(v) if '.' in v else int(v)
                except ValueError:
                    rec[k] = v
            with self.lock:
                self.lines.append(rec)

    def records(self, kind):
        with self.lock:
            return [r for r in self.lines if r['kind'] == kind]

    def wait_record(self, kind, seconds):
        return wait_until(lambda: self.records(kind), seconds, 0.1)

    def wait(self, seconds):
        """Its exit status, once it has ended (killed after seconds)."""
        try:
            self.proc.wait(seconds)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.thread.join(5)
        self.err.close()
        return self.proc.returncode

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        return self.wait(10)
