"""tests/integration/lib/ctrl_c.py — runs a command the way a terminal runs a foreground job, so a
test can press Ctrl-C: the command gets its own process group with SIGINT at its default
disposition (a shell script's background job would inherit SIGINT ignored). On SIGUSR1 this sends
SIGINT to that whole group, as the terminal does, and exits with the command's status; 124 if it
then takes more than 15 s (the group is killed), or if no SIGUSR1 came within 120 s.

Usage: ctrl_c.py COMMAND [ARG...]   (its output goes where ours goes)"""

import os
import signal
import subprocess
import sys
import time

child = subprocess.Popen(sys.argv[1:], start_new_session=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
pressed = None
forgotten = False   # nobody pressed Ctrl-C in time: we did, and the status says so


def press(*_):
    global pressed
    if pressed is None:
        pressed = time.monotonic()
        os.killpg(child.pid, signal.SIGINT)


signal.signal(signal.SIGUSR1, press)
started = time.monotonic()
while True:
    try:
        status = child.wait(timeout=0.1)
        sys.exit(124 if forgotten else status)
    except subprocess.TimeoutExpired:
        pass
    now = time.monotonic()
    if pressed is None and now - started > 120:
        forgotten = True
        press()
    elif pressed is not None and now - pressed > 15:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
        sys.exit(124)
