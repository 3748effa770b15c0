"""tests/integration/test_standby.py — a standby SM takes over (docs/deployment.md, "Standby SM").

Two SM configurations on one database (SQLite, used by one SM process at a time: the standby
opens the file a SIGKILLed SM left), the active SM on 127.0.0.1 and the standby on 127.0.0.2
(another box), and two fronts whose <sm> lists the active one and, as <standby>, the other.
Under a steady message load (tests/bench/loadgen) between clients spread over the two fronts:
  1. the active SM is killed (SIGKILL) and the standby started, as an operator or a cluster
     manager would once the active box is gone: both fronts move to it and re-announce their
     sessions (their logs say so; their metric jabshard_c2s_link_sm names it); every session is
     on the standby (jabshardctl against it), available; two contacts on different fronts see no
     presence flap, a message sent during the outage arrives directly, and their rosters,
     presence and messages work as before;
  2. the load generator's round across the move: no client disconnected, no message lost, none
     errored, none delivered twice; then a second round on the standby, the same;
  3. the old active SM started again (no split brain): no front goes back to it (jabshardctl
     against it lists no session), not even when the links to the standby are cut (ss -K): a
     front tries its own SM again first, and the standby is still there;
  4. the old SM stopped, then the standby killed and the old one started: the fronts go round
     their list to the first SM again, every session with them.

Usage: test_standby.py BUILD_DIR. Ends with "standby: N passed, N failed"."""

import os
import subprocess
import time
import urllib.request
import xml.etree.ElementTree as ET

from jabtest.suite import main, require_slixmpp

require_slixmpp('standby')

from jabtest.faults import (all_available, load_args, prepared,  # noqa: E402
                            presence_across_restart, sessions, summary)
from jabtest.proc import wait_until  # noqa: E402
from jabtest.report import Failure  # noqa: E402
from jabtest.system import free_ports, sanitized, sanitizer_reports  # noqa: E402

FRONTS = ('jadc2s', 'front2')
STANDBY_IP = '127.0.0.2'


class Pair:
    """The two SMs: their configurations (the active one as tools/run.sh made it; the standby a
    copy listening on STANDBY_IP, with its own admin socket and metrics address) and the fronts'
    <standby> and metrics ports."""

    def __init__(self, system):
        self.system = system
        self.active_conf = system.sm_conf
        self.active = ('127.0.0.1', system.sm_port)
        self.standby = (STANDBY_IP, free_ports(1, STANDBY_IP)[0])
        self.standby_conf = os.path.join(system.run, 'standby.xml')
        tree = ET.parse(self.active_conf)
        root = tree.getroot()
        for acc in root.iter('accept'):
            acc.find('ip').text, acc.find('port').text = self.standby[0], str(self.standby[1])
        admin = root.find('admin')
        if admin is None:
            admin = ET.SubElement(root, 'admin')
        ET.SubElement(admin, 'socket').text = os.path.join(system.run, 'standby.sock')
        metrics = root.find('metrics')
        if metrics is not None:
            metrics.find('ip').text = STANDBY_IP
            metrics.find('port').text = str(free_ports(1, STANDBY_IP)[0])
        tree.write(self.standby_conf, encoding='unicode')
        self.metrics = {}
        for f in FRONTS:
            self.metrics[f] = free_ports(1)[0]
            self._front(f)

    def _front(self, front_id):
        path = self.system.fronts[front_id][0]
        tree = ET.parse(path)
        root = tree.getroot()
        sb = ET.SubElement(root.find('sm'), 'standby')
        ET.SubElement(sb, 'host').text = self.standby[0]
        ET.SubElement(sb, 'port').text = str(self.standby[1])
        m = root.find('metrics')
        if m is None:
            m = ET.SubElement(root, 'metrics')
            ET.SubElement(m, 'ip').text = '127.0.0.1'
            ET.SubElement(m, 'port')
        m.find('port').text = str(self.metrics[front_id])
        tree.write(path, encoding='unicode')

    def start(self, standby):
        """The active SM (sm.log) or the standby (standby.log), as system.sm; None if it did not
        start."""
        self.system.sm_conf = self.standby_conf if standby else self.active_conf
        return self.system.start_sm(log='standby.log' if standby else 'sm.log')

    def ctl_sessions(self, standby):
        """jabshardctl sessions against one SM: its rows ([] when it is not running)."""
        r = self.system.ctl('sessions', config=self.standby_conf if standby else self.active_conf)
        return [f for f in (line.split('\t') for line in r.stdout.splitlines()) if len(f) == 5]

    def link_sm(self, front_id):
        """The front's metric jabshard_c2s_link_sm: {"host:port": value}."""
        url = 'http://127.0.0.1:%d/metrics' % self.metrics[front_id]
        with urllib.request.urlopen(url, timeout=5) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            if line.startswith('jabshard_c2s_link_sm{'):
                out[line.split('sm="', 1)[1].split('"', 1)[0]] = int(line.rsplit(' ', 1)[1])
        return out

    def fronts_on(self, addr):
        """Every front's link is up on the SM at addr (its metric), and only there."""
        want = '%s:%d' % addr
        try:
            return all(v == (k == want) for f in FRONTS for k, v in self.link_sm(f).items())
        except OSError:
            return False


def log_count(system, needle):
    return [system.program_log(f).count(needle) for f in FRONTS]


def switched(pair, frm, to):
    return 'SM link: switched from the SM at %s:%d to the SM at %s:%d' % (frm + to)


def move(rep, system, pair, kill_standby, seconds=30):
    """Kills the SM the fronts are on (the active, or with kill_standby the standby), starts the
    other, and waits for both fronts to have resynced with it. A fault for presence_across_restart
    too (during: what to do while no SM runs)."""
    frm, to = (pair.standby, pair.active) if kill_standby else (pair.active, pair.standby)
    needle = switched(pair, frm, to)

    def fault(system_, during=lambda: None):
        before = log_count(system, needle)
        resynced = log_count(system, 'SM link: resync done')
        system.sm.kill()
        during()
        time.sleep(1)  # the operator's, or the cluster manager's, reaction
        if not pair.start(standby=not kill_standby):
            raise Failure('the %s SM did not start' % ('active' if kill_standby else 'standby'))
        if not wait_until(lambda: all(n > b for n, b in zip(log_count(system, needle), before))
                          and all(n > b for n, b in zip(log_count(system, 'SM link: resync done'),
                                                        resynced)), seconds):
            raise Failure('the fronts did not move to %s:%d and resync there' % to)
    return fault


def load_round(rep, lg, name, users, index, seconds):
    """The load generator's round number index (1, 2...): no client disconnected, nothing lost,
    errored or delivered twice."""
    rounds = lg.wait_record('round', seconds) and wait_until(
        lambda: len(lg.records('round')) >= index, seconds)
    if not rounds:
        rep.not_ok('%s: the load generator finished round %d' % (name, index))
        return
    r = lg.records('round')[index - 1]
    rep.check('%s: no client disconnected' % name, r.get('connected') == users, summary(r),
              figures=True)
    rep.check('%s: no message lost, none errored, none delivered twice' % name,
              r.get('lost') == 0 and r.get('errored') == 0 and r.get('dup') == 0 and
              r.get('delivered', 0) >= r.get('sent', 1), summary(r), figures=True)


def old_comes_back(rep, system, pair, users):
    """The old active SM started again while the standby serves: the fronts stay."""
    ups = log_count(system, 'SM link: up')
    standby = system.sm
    started = pair.start(standby=False)
    time.sleep(6)   # past the link thread's tick: nothing makes it look elsewhere
    rep.check('old SM back: it starts, and no front links to it',
              bool(started) and log_count(system, 'SM link: up') == ups and
              not pair.ctl_sessions(standby=False) and pair.fronts_on(pair.standby),
              'sessions on the old SM: %d' % len(pair.ctl_sessions(standby=False)))
    old, system.sm, system.sm_conf = system.sm, standby, pair.standby_conf
    resyncs = log_count(system, 'SM link: resync done')
    cut = subprocess.run(['ss', '-K', 'dst', pair.standby[0], 'dport', '=',
                          ':%d' % pair.standby[1]], capture_output=True, text=True)
    back = wait_until(lambda: all(n > b for n, b in
                                  zip(log_count(system, 'SM link: resync done'), resyncs)), 30)
    rep.check('old SM back: links to the standby cut (ss -K), the fronts come back to the '
              'standby, not to the old SM',
              back and log_count(system, 'SM link: up') == [u + 1 for u in ups] and
              not pair.ctl_sessions(standby=False) and pair.fronts_on(pair.standby) and
              wait_until(lambda: all_available(system, users), 10),
              '%d sockets closed; sessions %s' % (cut.stdout.count('ESTAB'), sessions(system)),
              figures=True)
    rep.check('old SM back: stopped (SIGTERM) again', old.stop() == 0)


def suite(rep, build):
    users, rate, seconds = (200, 100, 15) if sanitized(build) else (400, 200, 15)
    system = prepared(rep, build, 'standby', users)
    if system is None:
        return
    with system:
        pair = Pair(system)
        ok = bool(pair.start(standby=False)) and all(bool(system.start_front(f)) for f in FRONTS)
        rep.check('the active SM and two fronts (each with the standby in <sm>) are up',
                  ok and wait_until(lambda: pair.fronts_on(pair.active), 10), system.dir,
                  figures=True)
        if not ok:
            return
        # Two rounds, then idle connections for the old SM's return and the move back.
        args = load_args(system, users, rate, seconds)
        args[args.index('--rates') + 1] = '%d,%d' % (rate, rate)
        lg = system.loadgen(args + ['--hold-after', '60'], 'load')
        login = lg.wait_record('login', 120)
        if not rep.check('%d clients logged in over two fronts' % users,
                         bool(login) and login[0].get('ok') == users,
                         login[0] if login else 'no login line', figures=True):
            return
        time.sleep(seconds / 3)
        t = time.monotonic()
        # 1. The active SM killed in the first round, the standby started.
        presence_across_restart(rep, system, 'user%d' % (users + 1), 'user%d' % (users + 2),
                                fault=move(rep, system, pair, kill_standby=False),
                                what='the move to the standby SM')
        moved = time.monotonic() - t
        rep.check('move: every session on the standby (jabshardctl against it), available',
                  wait_until(lambda: all_available(system, users), 10),
                  'kill to both fronts resynced with the standby: %.2f s (1 s of it the start '
                  'delay); %s' % (moved, sessions(system)), figures=True)
        rep.check('move: each front logged the switch and its metric names the standby',
                  pair.fronts_on(pair.standby), str({f: pair.link_sm(f) for f in FRONTS}))
        # 2. The rounds: across the move, then on the standby.
        load_round(rep, lg, 'round across the move', users, 1, seconds + 60)
        load_round(rep, lg, 'round on the standby', users, 2, seconds + 60)
        # 3. The old SM back: no split brain.
        old_comes_back(rep, system, pair, users)
        # 4. The standby killed, the first SM started: round the list.
        try:
            move(rep, system, pair, kill_standby=True)(system)
            rep.check('back: the fronts moved to the first SM again, every session with them',
                      pair.fronts_on(pair.active) and
                      wait_until(lambda: all_available(system, users), 10), sessions(system))
        except Failure as e:
            rep.not_ok('back: the fronts moved to the first SM again', str(e))
        lg.stop()
        for p in system.programs:
            if sanitizer_reports(p.text()):
                rep.not_ok('no sanitizer reports in %s' % p.log_path, p.text()[-3000:])


if __name__ == '__main__':
    main('standby', suite)
