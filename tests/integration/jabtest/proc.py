"""jabtest.proc — what a suite asks about a process by its PID (alive, resident memory) and the
bounded wait every other wait is built on."""

import time


def alive(pid):
    """The process exists and is not a zombie."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except (OSError, IndexError):
        return False


def rss_kib(pid):
    """The process's resident memory, in KiB (0 when it is gone)."""
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def comm(pid):
    """The process's command name ('' when it is gone)."""
    try:
        with open('/proc/%d/comm' % pid) as f:
            return f.read().strip()
    except OSError:
        return ''


def wait_until(pred, seconds, step=0.05):
    """pred()'s first true value within seconds, or its value at the end."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        value = pred()
        if value:
            return value
        time.sleep(step)
    return pred()
