# tests/bench/peers/peerlib.py: what every server module of the peer benchmark shares: starting a
# program (as a service user, with the open-file limit raised) and stopping it by PID, the
# process tree a server consists of and its resident memory and CPU time, waiting for a port,
# templates, counting an SQLite table's rows, the users' SCRAM credentials (computed once per user
# and cached, shared by every server), the one self-signed certificate, and Debian package
# installation.
import base64
import hashlib
import hmac
import multiprocessing
import os
import pwd
import re
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")
ITERATIONS = 4096
# Wrappers that start a server but are no part of it (ejabberdctl's sh, tools/run.sh, its sleeps).
WRAPPERS = {"sh", "dash", "bash", "sleep", "su", "awk", "mawk", "gawk", "sed", "od", "tr"}


def log(msg):
    print("bench-peers: " + msg, flush=True)


# ---- processes -------------------------------------------------------------------------------

def _stat(pid):
    """(comm, ppid, utime + stime in ticks) of PID, or None once it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except OSError:
        return None
    comm = data[data.index("(") + 1:data.rindex(")")]
    fields = data[data.rindex(")") + 2:].split()
    if fields[0] == "Z":
        return None
    return comm, int(fields[1]), int(fields[11]) + int(fields[12])


def tree(roots):
    """PIDs of ROOTS and all their descendants still alive."""
    children = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _stat(int(name))
            if st:
                children.setdefault(st[1], []).append(int(name))
    out, todo = [], [r for r in roots if _stat(r)]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def server_pids(roots):
    """The server's own processes under ROOTS: the tree less its shell wrappers."""
    return [p for p in tree(roots) if (_stat(p) or ("sh",))[0] not in WRAPPERS]


def rss_kib(pids):
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/statm" % pid) as f:
                total += int(f.read().split()[1]) * PAGE // 1024
        except OSError:
            pass
    return total


def rss_median(roots):
    """The server's resident memory (KiB): the median of three samples half a second apart."""
    samples = []
    for _ in range(3):
        samples.append(rss_kib(server_pids(roots)))
        time.sleep(0.5)
    return sorted(samples)[1]


def cpu_seconds(pids):
    return sum((_stat(p) or ("", 0, 0))[2] for p in pids) / TICK


class Usage:
    """CPU seconds of a server's processes, accumulated across samples so that a process that
    exits between two samples still counts up to its last sample."""

    def __init__(self, roots):
        self.roots = roots
        self.seen = {}

    def sample(self):
        for pid in server_pids(self.roots):
            st = _stat(pid)
            if st:
                self.seen[pid] = st[2]
        return sum(self.seen.values()) / TICK


def alive(pid):
    return _stat(pid) is not None


def spawn(argv, logpath, user=None, env=None, cwd=None):
    """Starts ARGV in its own process group, output to LOGPATH, as USER (a service account) when
    given, with the open-file limit at its hard maximum. Returns the Popen."""
    uid = gid = None
    if user and os.getuid() == 0:
        pw = pwd.getpwnam(user)
        uid, gid = pw.pw_uid, pw.pw_gid

    def child():
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        if uid is not None:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)

    out = open(logpath, "ab")
    try:
        # A process group of its own (a Ctrl-C to the harness does not reach it), but not a session
        # of its own: with the kernel's autogroup scheduling every session is one scheduling
        # group, and a server in its own would get half the CPU against the load generator's,
        # however many threads it runs. In the harness's session all threads compete alike.
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                env=env, cwd=cwd, preexec_fn=child, process_group=0)
    finally:
        out.close()


def stop(roots, grace=15.0):
    """SIGTERM to each root, then SIGKILL, by PID, to whatever of their trees is left after
    GRACE seconds. Reaps the roots that are our children."""
    pids = tree(roots)
    for pid in roots:
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    deadline = time.time() + grace
    while time.time() < deadline and any(alive(p) for p in pids):
        _reap(roots)
        time.sleep(0.2)
    for pid in tree(roots) + [p for p in pids if alive(p)]:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    time.sleep(0.2)
    _reap(roots)


def _reap(pids):
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


def listening(port, host="127.0.0.1"):
    s = socket.socket()
    s.settimeout(0.5)
    try:
        s.connect((host, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def wait_listening(ports, roots, seconds, host="127.0.0.1"):
    """Waits for every port of HOST to accept while the server's roots live; raises with the
    reason."""
    deadline = time.time() + seconds
    while True:
        missing = [p for p in ports if not listening(p, host)]
        if not missing:
            return
        if not any(alive(r) for r in roots):
            raise RuntimeError("exited before listening on %s" % missing)
        if time.time() > deadline:
            raise RuntimeError("not listening on %s after %d s" % (missing, seconds))
        time.sleep(0.3)


def free_ports(ports):
    busy = [p for p in ports if listening(p)]
    if busy:
        raise RuntimeError("ports already in use: %s" % busy)


# ---- files -----------------------------------------------------------------------------------

def render(template, dest, values):
    """Copies tests/bench/peers/TEMPLATE to DEST with each @KEY@ replaced by VALUES[KEY]."""
    with open(os.path.join(HERE, template)) as f:
        text = f.read()
    for key, value in values.items():
        text = text.replace("@%s@" % key, str(value))
    left = re.findall(r"@[A-Z_]+@", text)
    if left:
        raise RuntimeError("%s: no value for %s" % (template, left[:3]))
    with open(dest, "w") as f:
        f.write(text)


def chown_tree(path, user):
    pw = pwd.getpwnam(user)
    for dirpath, dirnames, filenames in os.walk(path):
        os.chown(dirpath, pw.pw_uid, pw.pw_gid)
        for name in filenames:
            os.chown(os.path.join(dirpath, name), pw.pw_uid, pw.pw_gid)


def fresh_copy(src, dest):
    if os.path.exists(dest):
        shutil.rmtree(dest)
    shutil.copytree(src, dest, symlinks=True)


def count_rows(db_path, table):
    """Rows of TABLE in the SQLite database DB_PATH."""
    db = sqlite3.connect(db_path)
    try:
        return db.execute("SELECT COUNT(*) FROM %s" % table).fetchone()[0]
    finally:
        db.close()


# ---- credentials -----------------------------------------------------------------------------

def b64(data):
    return base64.b64encode(data).decode()


def hexkey(b64key):
    return base64.b64decode(b64key).hex()


def _scram(name, password, salt):
    salted = hashlib.pbkdf2_hmac(name, password, salt, ITERATIONS)
    client = hmac.new(salted, b"Client Key", name).digest()
    return hashlib.new(name, client).digest(), hmac.new(salted, b"Server Key", name).digest()


def _user_creds(i):
    # A printable salt: Prosody keeps it as a string in its account files; the others get base64.
    salt = os.urandom(16).hex().encode()
    pw = b"pass%d" % i
    sk1, sv1 = _scram("sha1", pw, salt)
    sk2, sv2 = _scram("sha256", pw, salt)
    return "\t".join([str(i), salt.decode(), b64(sk1), b64(sv1), b64(sk2), b64(sv2)])


def _worker_signals():
    # The orchestrator's handlers turn SIGTERM into KeyboardInterrupt; the pool ends its workers
    # with SIGTERM.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class Cred:
    __slots__ = ("i", "user", "password", "salt", "sha1_stored", "sha1_server", "sha256_stored",
                 "sha256_server")

    def __init__(self, line):
        f = line.rstrip("\n").split("\t")
        self.i = int(f[0])
        self.user = "user%d" % self.i
        self.password = "pass%d" % self.i
        self.salt = f[1]
        self.sha1_stored, self.sha1_server, self.sha256_stored, self.sha256_server = f[2:6]


def credentials(n, cache):
    """SCRAM-SHA-1 and SCRAM-SHA-256 credentials (4,096 iterations) of user1..userN, computed on
    every core the first time and kept in CACHE: 19,000 users cost about 35 s of CPU once."""
    have = {}
    if os.path.exists(cache):
        with open(cache) as f:
            for line in f:
                c = Cred(line)
                have[c.i] = line
    missing = [i for i in range(1, n + 1) if i not in have]
    if missing:
        log("computing SCRAM credentials for %d users (cached in %s)" % (len(missing), cache))
        with multiprocessing.Pool(os.cpu_count() or 2, initializer=_worker_signals) as pool:
            lines = pool.map(_user_creds, missing, chunksize=256)
        with open(cache, "a") as f:
            for line in lines:
                f.write(line + "\n")
                have[int(line.split("\t", 1)[0])] = line
    return [Cred(have[i]) for i in range(1, n + 1)]


def ring(n, k):
    """User index i's K contacts (K even): i+1..i+K/2 and i-1..i-K/2 mod N, every one mutual; the
    ring of loadgen --pep (tests/bench/loadgen/lg_pep.h), in its slot order."""
    if k % 2 or k >= n:
        raise ValueError("contacts must be even and fewer than the users")
    for i in range(n):
        yield i, [(i + d) % n for d in range(1, k // 2 + 1)] + \
            [(i - d) % n for d in range(1, k // 2 + 1)]


# ---- certificate -----------------------------------------------------------------------------

def certificate(directory):
    """One self-signed certificate for localhost for every server: cert.pem, key.pem and
    server.pem (both), readable by the service users (it protects nothing but a benchmark)."""
    os.makedirs(directory, exist_ok=True)
    pem = os.path.join(directory, "server.pem")
    if not os.path.exists(pem):
        cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-days", "3650", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost", "-keyout", key, "-out", cert],
                       check=True, capture_output=True)
        with open(pem + ".new", "w") as out:
            for part in (cert, key):
                with open(part) as f:
                    out.write(f.read())
        os.rename(pem + ".new", pem)
    os.chmod(directory, 0o755)
    for name in ("cert.pem", "key.pem", "server.pem"):
        os.chmod(os.path.join(directory, name), 0o644)
    return directory


# ---- packages --------------------------------------------------------------------------------

def package_version(name):
    r = subprocess.run(["dpkg-query", "-W", "-f", "${Status}\t${Version}", name],
                       capture_output=True, text=True)
    if r.returncode != 0 or not r.stdout.startswith("install ok installed"):
        return None
    return r.stdout.split("\t")[1]


def ensure_packages(packages, service_users):
    """apt-get installs whichever of PACKAGES is missing, then stops, by PID, any packaged daemon
    that the packages' maintainer scripts may have started (invoke-rc.d, where policy-rc.d lets
    it): every process of SERVICE_USERS that is not one of ours."""
    missing = [p for p in packages if package_version(p) is None]
    if missing:
        if os.getuid() != 0:
            raise RuntimeError("missing packages %s and not root to install them" % missing)
        log("installing " + " ".join(missing))
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        cmd = ["apt-get", "install", "-y", "--no-install-recommends"] + missing
        if subprocess.run(cmd, env=env).returncode != 0:
            subprocess.run(["apt-get", "update"], env=env)
            subprocess.run(cmd, env=env, check=True)
    stop_packaged_daemons(service_users)


def stop_packaged_daemons(users):
    """Stops every process running as one of USERS whose command line does not name
    build/bench-peers (ours all do: their configuration or data lives there)."""
    uids = set()
    for user in users:
        try:
            uids.add(pwd.getpwnam(user).pw_uid)
        except KeyError:
            pass
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        try:
            uid = os.stat("/proc/%d" % pid).st_uid
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if uid in uids and "bench-peers" not in cmd:
            log("stopping packaged daemon %d (%s)" % (pid, cmd[:80]))
            stop([pid], grace=10)


# ---- the servers -----------------------------------------------------------------------------

class Server:
    """One server under test. A subclass sets NAME, PACKAGES (Debian packages it needs), USER (the
    account it runs as, None for root) and implements version(), write_store() and launch().
    Ports: PORT is plain TCP with STARTTLS offered but not required, PORT + 1 direct TLS; a server
    with web clients (WEB) serves HTTP on PORT + 2 and HTTPS on PORT + 3: XMPP over WebSocket at
    WS_PATH (ws_url()) and its HTTP File Upload store (UPLOAD_DOMAIN hands out the slots;
    scenario_web.py, scenario_upload.py)."""
    name = ""
    packages = []
    user = None
    mechanism = "SCRAM-SHA-1"
    # Message archiving (scenario_mam.py): whether the module can turn it on and off, and the
    # setting of the next start (None: as the configuration has it, True: on for every account,
    # False: off).
    can_archive = False
    archiving = None
    # Group chat (scenario_muc.py): whether the server has a MUC service at conference.localhost in
    # this benchmark, and whether the next start turns it on (jabshard's is always on).
    can_muc = False
    muc = False
    web = False
    ws_path = "/xmpp-websocket"
    upload_domain = "upload.localhost"

    def __init__(self, workdir, certdir, port):
        self.workdir = os.path.join(workdir, self.name)
        self.certdir = certdir
        self.port = port
        self.tls_port = port + 1
        self.http_port = port + 2
        self.https_port = port + 3
        self.procs = []
        self.stored = 0
        self.roster_stores = set()

    @property
    def ports(self):
        return [self.port, self.tls_port] + ([self.http_port, self.https_port] if self.web else [])

    def ws_url(self, tls=False):
        """The WebSocket URL web clients are given (ws:// on the plain HTTP port, wss:// on HTTPS)."""
        return "%s://localhost:%d%s" % ("wss" if tls else "ws",
                                        self.https_port if tls else self.http_port, self.ws_path)

    def prepare(self, creds):
        """Bulk-creates the accounts once into workdir/store, copied afresh at every start."""
        store = os.path.join(self.workdir, "store")
        if self.stored >= len(creds):
            return
        if os.path.exists(store):
            shutil.rmtree(store)
        os.makedirs(store)
        t = time.time()
        self.write_store(store, creds)
        if self.user:
            chown_tree(store, self.user)
        self.stored = len(creds)
        log("%s: %d accounts written in %.1f s" % (self.name, len(creds), time.time() - t))

    def start(self, timeout=120, store=None):
        """Starts on a fresh copy of workdir/store, or of STORE (a copy of it with more in it)."""
        run = os.path.join(self.workdir, "run")
        fresh_copy(store or os.path.join(self.workdir, "store"), run)
        os.makedirs(os.path.join(run, "log"), exist_ok=True)
        if self.user:
            chown_tree(run, self.user)
        free_ports(self.ports)
        self.procs = self.launch(run)
        wait_listening(self.ports, self.roots, timeout)

    @property
    def roots(self):
        return [p.pid for p in self.procs]

    def roster_store(self, n, k):
        """A copy of the store in which user1..userN each have K contacts, all subscriptions both
        ways (ring(): the contacts loadgen --pep expects); made once per (N, K) and run. Returns
        its path."""
        store = os.path.join(self.workdir, "store-rosters-%d-%d" % (n, k))
        if store not in self.roster_stores:
            t = time.time()
            for old in (store, store + ".new"):
                if os.path.exists(old):
                    shutil.rmtree(old)   # an earlier run's, over other accounts
            fresh_copy(os.path.join(self.workdir, "store"), store + ".new")
            self.write_rosters(store + ".new", n, k)
            os.rename(store + ".new", store)
            self.roster_stores.add(store)
            log("%s: %d rosters of %d contacts written in %.1f s" % (self.name, n, k,
                                                                    time.time() - t))
        return store

    def write_rosters(self, store, n, k):
        raise NotImplementedError

    def archived_messages(self):
        """Messages in the archives of the last run's storage (read after it stopped), or None
        when this module cannot count them."""
        return None

    def stop(self):
        if self.procs:
            stop(self.roots)
        self.procs = []

    def log_tail(self, lines=20):
        out = []
        logdir = os.path.join(self.workdir, "run", "log")
        for name in sorted(os.listdir(logdir)) if os.path.isdir(logdir) else []:
            with open(os.path.join(logdir, name), errors="replace") as f:
                out += ["%s: %s" % (name, l.rstrip()) for l in f.readlines()[-lines:]]
        return out
