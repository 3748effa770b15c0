"""jabtest.profanity — Profanity (the Debian package, a terminal XMPP client) driven as a person
would: each instance runs in a tmux session on a tmux server of the suite's own (its socket in
the suite's directory), with its own HOME and XDG directories there, an account file that
connects it to the front (STARTTLS, the self-signed certificate trusted) and a debug log with
every stanza it sent and received. A suite types lines (type_line) and waits for what the screen
shows (wait_screen); every wait is bounded, and Tmux.close() ends the tmux server and every
Profanity by PID. The Profanity suites share their system (start_system, stop_system): the SM on
SQLite, one front, accounts u0 and u1 (passwords pw0 and pw1)."""

import os
import re
import shutil
import signal
import subprocess

from .proc import alive, comm, wait_until
from .report import Failure
from .system import free_ports, front_xml, service, sm_xml

PROFANITY = shutil.which('profanity') or '/usr/bin/profanity'
TMUX = shutil.which('tmux') or '/usr/bin/tmux'
# A line of Profanity's debug log with a stanza it received (libstrophe's, through its logger).
STANZA_LINE = re.compile(r': RECV: (<.*)$')


def missing():
    """Of Profanity and tmux, those not installed."""
    return [p for p in (PROFANITY, TMUX) if not os.access(p, os.X_OK)]


class Tmux:
    """A tmux server on a socket of its own (path); its sessions are the clients' terminals."""

    def __init__(self, path):
        self.path = path
        self.pids = set()     # the tmux server's and every pane's process (Profanity's)

    def run(self, *args):
        return subprocess.run([TMUX, '-S', self.path] + list(args), capture_output=True,
                              text=True, stdin=subprocess.DEVNULL, timeout=10)

    def new_session(self, name, argv):
        """A detached 200x50 session running argv directly (no shell); its pane's PID."""
        r = self.run('new-session', '-d', '-s', name, '-x', '200', '-y', '50', '-P', '-F',
                     '#{pid} #{pane_pid}', *argv)
        if r.returncode != 0:
            raise Failure('tmux new-session %s: %s' % (name, r.stderr.strip()))
        server, pane = (int(p) for p in r.stdout.split())
        self.pids.update((server, pane))
        return pane

    def close(self):
        """kill-server (SIGHUP to the panes), then SIGKILL to whichever of our PIDs lives on (if
        it is still tmux or Profanity)."""
        self.run('kill-server')
        for pid in self.pids:
            if (not wait_until(lambda p=pid: not alive(p), 3) and
                    comm(pid) in ('tmux: server', 'profanity')):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


class Profanity:
    """One Profanity logged in as jid (password password) through the front on 127.0.0.1:port,
    its files under home; each run in a tmux session of its own (NAME-1, NAME-2, ...)."""

    def __init__(self, tmux, home, name, jid, password, port):
        self.tmux, self.home, self.name, self.jid = tmux, home, name, jid
        self.data = os.path.join(home, '.local', 'share')
        self.config = os.path.join(home, '.config')
        self.runs = 0
        self.session = self.pid = None
        account = ('[{jid}]\nenabled=true\njid={jid}\nserver=127.0.0.1\nport={port}\n'
                   'resource=prof\npassword={pw}\ntls.policy=trust\n'
                   .format(jid=jid, port=port, pw=password))
        self._write(os.path.join(self.data, 'profanity', 'accounts'), account)
        self._write(os.path.join(self.config, 'profanity', 'profrc'), '[ui]\nvercheck=false\n')

    @staticmethod
    def _write(path, text):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'w') as f:
            f.write(text)

    def start(self):
        """Profanity in a new tmux session, connecting at once (-a) and logging at debug."""
        env = ['HOME=' + self.home, 'XDG_CONFIG_HOME=' + self.config, 'XDG_DATA_HOME=' + self.data,
               'XDG_CACHE_HOME=' + os.path.join(self.home, '.cache'), 'TERM=xterm-256color',
               'LANG=C.UTF-8', 'PATH=/usr/bin:/bin']
        self.runs += 1
        self.session = '%s-%d' % (self.name, self.runs)
        self.pid = self.tmux.new_session(self.session, ['/usr/bin/env', '-i'] + env +
                                         [PROFANITY, '-a', self.jid, '-l', 'DEBUG'])

    def type_line(self, line):
        """Types line and Enter, as a person would."""
        for keys in (['-l', line], ['Enter']):
            r = self.tmux.run('send-keys', '-t', self.session, *keys)
            if r.returncode != 0:
                raise Failure('%s: tmux send-keys: %s' % (self.session, r.stderr.strip()))

    def screen(self):
        """The text of the pane, its history included, wrapped lines joined."""
        return self.tmux.run('capture-pane', '-p', '-J', '-S', '-1000', '-t', self.session).stdout

    def wait_screen(self, pattern, what, seconds=10):
        """The first match of the regular expression pattern on the screen within seconds;
        raises Failure with the screen's last lines otherwise."""
        found = wait_until(lambda: re.search(pattern, self.screen()), seconds, step=0.1)
        if not found:
            tail = '\n'.join(line for line in self.screen().splitlines() if line.strip())
            raise Failure('%s: no %s within %s s; the screen ends with:\n%s' % (
                self.jid, what, seconds, '\n'.join(tail.splitlines()[-12:])))
        return found

    def exited(self, seconds=10):
        return wait_until(lambda: not alive(self.pid), seconds)

    def received(self, pred):
        """The stanzas (as text) this Profanity's debug log says it received, those for which
        pred holds."""
        path = os.path.join(self.data, 'profanity', 'logs', 'profanity.log')
        try:
            with open(path, encoding='utf-8', errors='replace') as f:
                lines = f.read().splitlines()
        except OSError:
            return []
        return [m.group(1) for m in map(STANZA_LINE.search, lines) if m and pred(m.group(1))]

    def wait_received(self, pred, after=0, seconds=10):
        """The stanzas received for which pred holds but the first after, once there is one
        (within seconds; [] if none came)."""
        return wait_until(lambda: self.received(pred)[after:], seconds, step=0.1)



def start_system(r, system):
    """Profanity and tmux installed, our programs built, accounts u0 and u1, the SM (SQLite) and
    one front running, each a check: the front's (STARTTLS port, direct TLS port), or None after
    the check that failed."""
    absent = missing()
    if not (system.ready(r) and
            r.check('Profanity and tmux are installed (tools/deps.sh installs them)', not absent,
                    ' '.join(absent))):
        return None
    sm_port, port, tls_port = free_ports(3)
    system.use_sm(sm_xml(system.path('db.sqlite'), [service('jadc2s', sm_port, 's', 'front')]))
    system.use_front('jadc2s', front_xml('jadc2s', 's', sm_port, '127.0.0.1', port, tls_port,
                                         system.path('none.pem')), port)
    ok, out, _ = system.import_accounts([('u0@localhost', 'pw0'), ('u1@localhost', 'pw1')])
    if (r.check('import u0 and u1', ok, out) and
            r.check('the SM starts', system.start_sm(ready_port=sm_port, seconds=10)) and
            r.check('the front starts', system.start_front(probe_port=tls_port, seconds=10))):
        return port, tls_port
    return None


def stop_system(r, system):
    """The front and the SM exit 0 on SIGTERM; no sanitizer reports in the logs."""
    r.check('the front exits 0 on SIGTERM', system.front().stop() == 0)
    r.check('the SM exits 0 on SIGTERM', system.sm.stop() == 0)
    system.check_sanitizers(r)
