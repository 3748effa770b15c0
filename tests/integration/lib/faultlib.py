"""tests/integration/lib/faultlib.py — what the fault-injection scenarios share: a whole system (one
SM, any number of fronts) prepared by tools/run.sh (JABSHARD_PREPARE_ONLY) and then started, killed
and restarted program by program, by PID; accounts made with jabshardctl; the load generator
(tests/bench/loadgen) run in the background with its machine-readable lines collected as they
come; ok / not ok reporting with the figures each check measured.

Every wait is bounded; every process started here is stopped by its PID at the end."""

import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, '..', '..', '..'))


def free_ports(n, host='127.0.0.1'):
    """n ports free on host, below the kernel's ephemeral range: a program restarted by a test
    binds its port again, and a port the kernel may hand to an outgoing connection (the load
    generator's thousands) could be taken by then."""
    with open('/proc/sys/net/ipv4/ip_local_port_range') as f:
        low = int(f.read().split()[0])
    ports, rng = [], random.Random()
    while len(ports) < n:
        port = rng.randrange(max(1024, low - 12000), low)
        if port in ports:
            continue
        s = socket.socket()
        try:
            s.bind((host, port))
            ports.append(port)
        except OSError:
            pass
        finally:
            s.close()
    return ports


class Report:
    """ok / not ok lines and the closing 'NAME: N passed, N failed'."""

    def __init__(self, name):
        self.name, self.passed, self.failed = name, 0, 0

    def check(self, what, cond, detail=''):
        if cond:
            self.passed += 1
            print('ok - %s%s' % (what, ' (%s)' % detail if detail else ''), flush=True)
        else:
            self.failed += 1
            print('not ok - %s' % what, flush=True)
            for line in str(detail).splitlines():
                print('    ' + line, flush=True)
        return cond

    def note(self, text):
        print('# ' + text, flush=True)

    def finish(self):
        print('%s: %d passed, %d failed' % (self.name, self.passed, self.failed), flush=True)
        return 0 if self.failed == 0 else 1


def wait_until(pred, seconds, step=0.05):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        value = pred()
        if value:
            return value
        time.sleep(step)
    return pred()


def alive(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError:
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


class Program:
    """One of our programs, started with its own log file; stopped by PID."""

    def __init__(self, argv, log_path, env=None):
        self.argv, self.log_path = argv, log_path
        self.log = open(log_path, 'ab')
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                     stdin=subprocess.DEVNULL)
        self.pid = self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def text(self):
        with open(self.log_path, 'rb') as f:
            return f.read().decode('utf-8', 'replace')

    def count(self, needle):
        return self.text().count(needle)

    def wait_log(self, needle, seconds, times=1):
        return wait_until(lambda: self.count(needle) >= times, seconds)

    def kill(self, sig=signal.SIGKILL):
        if self.alive():
            os.kill(self.pid, sig)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.kill(self.pid, signal.SIGKILL)
            self.proc.wait()
        self.log.close()
        return self.proc.returncode

    def stop(self):
        return self.kill(signal.SIGTERM)


class Loadgen:
    """tests/bench/loadgen in the background; its stdout lines parsed as they arrive."""

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


class System:
    """One SM and its fronts, in a temporary directory."""

    def __init__(self, build, name):
        self.build = os.path.abspath(build)
        self.bin = os.path.join(self.build, 'bin')
        self.dir = tempfile.mkdtemp(prefix='jabshard-%s.' % name)
        os.chmod(self.dir, 0o755)
        self.run = os.path.join(self.dir, 'run')
        self.port, self.tls_port, self.sm_port = free_ports(3)
        self.programs = []
        self.fronts = {}            # id -> (config path, client port)
        self.front_procs = {}       # id -> its latest Program
        self.sm = None
        env = dict(os.environ, JABSHARD_RUN_DIR=self.run, JABSHARD_IP='127.0.0.1',
                   JABSHARD_PORT=str(self.port), JABSHARD_TLS_PORT=str(self.tls_port),
                   JABSHARD_SM_PORT=str(self.sm_port), JABSHARD_PREPARE_ONLY='1',
                   # The load generator measures the link, not the front's pacing (max_bps),
                   # and its bursts of offline messages are not slow readers (output_queue);
                   # its clients come from loopback, trusted by default (no conn_rate).
                   JABSHARD_LIMITS='max_bps=0 output_queue=4194304')
        subprocess.run(['sh', os.path.join(ROOT, 'tools', 'run.sh'), self.build], env=env,
                       check=True, stdout=subprocess.DEVNULL)
        self.sm_conf = os.path.join(self.run, 'sm.xml')
        self.secret = open(os.path.join(self.run, 'secret')).read().strip()
        self.fronts['jadc2s'] = (os.path.join(self.run, 'jadc2s.xml'), self.port)
        # Plain TCP for the load: the load generator measures the link, not TLS.
        self._edit(self.fronts['jadc2s'][0], self._plain_allowed)

    # ---- configuration ----

    @staticmethod
    def _edit(path, fn):
        tree = ET.parse(path)
        fn(tree.getroot())
        tree.write(path, encoding='unicode')

    @staticmethod
    def _plain_allowed(root):
        ssl = root.find('local/ssl')
        req = ssl.find('required') if ssl is not None else None
        if req is None and ssl is not None:
            req = ET.SubElement(ssl, 'required')
        if req is not None:
            req.text = 'false'

    def add_front(self, front_id, secret=None, ip='127.0.0.1', sm_port=None, service=True):
        """A second (third...) front: a <service> on the SM (unless service is False) and its own
        configuration with its own client ports. Returns the client port."""
        port, tls_port = free_ports(2)
        secret = secret or self.secret
        if service:
            def add_service(root):
                svc = ET.SubElement(root, 'service', {'id': front_id, 'role': 'front'})
                acc = ET.SubElement(svc, 'accept')
                ET.SubElement(acc, 'ip').text = '127.0.0.1'
                ET.SubElement(acc, 'port').text = str(self.sm_port)
                ET.SubElement(acc, 'secret').text = secret
            self._edit(self.sm_conf, add_service)
        src = self.fronts['jadc2s'][0]
        path = os.path.join(self.run, '%s.xml' % front_id)
        tree = ET.parse(src)
        root = tree.getroot()
        root.find('sm/id').text = front_id
        root.find('sm/secret').text = secret
        if sm_port:
            root.find('sm/port').text = str(sm_port)
        root.find('local/ip').text = ip
        root.find('local/port').text = str(port)
        root.find('local/ssl/port').text = str(tls_port)
        tree.write(path, encoding='unicode')
        self.fronts[front_id] = (path, port)
        return port

    def set_storage(self, settings):
        """settings: XDB_* from tests/storage/{postgres,mariadb}.sh's env file."""
        def edit(root):
            st = root.find('storage')
            for child in list(st):
                st.remove(child)
            ET.SubElement(st, 'driver').text = settings['XDB_DRIVER']
            for key, tag in (('XDB_HOST', 'host'), ('XDB_PORT', 'port'), ('XDB_USER', 'user'),
                             ('XDB_PASSWORD', 'password'), ('XDB_DATABASE', 'database')):
                if key in settings:
                    ET.SubElement(st, tag).text = settings[key]
        self._edit(self.sm_conf, edit)

    # ---- programs ----

    def start_sm(self):
        self.sm = Program([os.path.join(self.bin, 'jabshard-sm'), '-c', self.sm_conf],
                          os.path.join(self.dir, 'sm.log'))
        self.programs.append(self.sm)
        ok = wait_until(lambda: self.sm.count('listening') >= 1 or not self.sm.alive(), 20)
        return self.sm if ok and self.sm.alive() else None

    def start_front(self, front_id='jadc2s', wait_link=True):
        path, _ = self.fronts[front_id]
        p = Program([os.path.join(self.bin, 'jabshard-c2s'), '-c', path],
                    os.path.join(self.dir, '%s.log' % front_id))
        self.programs.append(p)
        self.front_procs[front_id] = p
        if wait_link and not p.wait_log('SM link: up', 20):
            return None
        return p

    def front(self, front_id):
        return self.front_procs[front_id]

    def program_log(self, front_id):
        """The front's log over all its runs (restarts append to it)."""
        return self.front_procs[front_id].text()

    def ctl(self, *args, timeout=120):
        return subprocess.run([os.path.join(self.bin, 'jabshardctl'), '-c', self.sm_conf] +
                              list(args), capture_output=True, text=True, timeout=timeout)

    def make_users(self, n, first=1):
        path = os.path.join(self.dir, 'users.txt')
        with open(path, 'w') as f:
            for i in range(first, first + n):
                f.write('user%d@localhost pass%d\n' % (i, i))
        r = self.ctl('import', path, timeout=600)
        return r.returncode == 0, r.stdout + r.stderr

    def sessions(self):
        """{front id: (bound sessions, of which available)} from jabshardctl sessions."""
        r = self.ctl('sessions', timeout=30)
        counts = {}
        for line in r.stdout.splitlines():
            f = line.split('\t')
            if len(f) == 5:
                bound, avail = counts.get(f[1], (0, 0))
                counts[f[1]] = (bound + 1, avail + (f[4] == 'available'))
        return counts

    def loadgen(self, args, name='loadgen'):
        binary = os.path.join(self.build, 'bench', 'loadgen')
        return Loadgen(binary, args, os.path.join(self.dir, '%s.err' % name))

    def cleanup(self):
        for p in self.programs:
            if p.alive():
                p.kill()
        subprocess.run(['rm', '-rf', self.dir])


def sanitized(build):
    return 'san-' in os.path.basename(os.path.abspath(build))


# Why a memory figure is not judged in a sanitizer build: AddressSanitizer keeps freed memory in
# quarantine (256 MB by default) and pads every allocation, ThreadSanitizer shadows it; the figure
# would be theirs. The default build judges it.
MEMORY_UNDER_SANITIZER = ("# skipped under a sanitizer: its quarantine of freed memory and its "
                          "shadow, not ours, would be the figure")
