# tests/bench/peers/server_jabshard.py: jabshard, front and SM on SQLite, started with tools/run.sh.
# run.sh derives its configuration from etc/ next to it; the benchmark needs two settings it has no
# variable for (STARTTLS optional, so plain TCP can be measured, and <max_fds> for the largest
# scenario), so it runs from a shadow tree: tools/run.sh a link to the real one, etc/ copies of the
# real templates with those two edits. Limits go through JABSHARD_LIMITS. Accounts are imported
# with jabshardctl from exported SCRAM credentials (no key derivation); rosters (scenario_pep.py)
# straight into its SQLite roster_items. Message archiving on or off (scenario_mam.py): sm.xml
# lists every built-in module (sm/modules.c), with or without mam. The programs are copied out
# of the build tree first, so a rebuild during the run cannot mix two versions. Web clients: the
# front's <http> listener as run.sh derives it from etc/jadc2s.xml (WebSocket at /xmpp-websocket,
# the upload store at /upload, files in the run directory), on the ports peerlib.Server gives.
import os
import re
import shutil
import sqlite3
import subprocess

import peerlib

ROOT = os.path.abspath(os.path.join(peerlib.HERE, "..", "..", ".."))
LIMITS = "max_bps=0 conn_rate=0 ip_auth_failures=0 stanza_size=524288"
MAX_FDS = 19880


def edit(text, old, new):
    if text.count(old) != 1:
        raise RuntimeError("etc/ changed: expected %r once" % old)
    return text.replace(old, new)


def modules_xml(archiving):
    """sm.xml's <modules>: the table of sm/modules.c (mod_NAME is module NAME), less mam (and
    muc_mam, which archives rooms through it) when archiving is off; scenario_s2s.py's jabshard
    too."""
    with open(os.path.join(ROOT, "sm", "modules.c")) as f:
        names = re.findall(r"&mod_(\w+)", f.read())
    if "mam" not in names:
        raise RuntimeError("sm/modules.c has no mod_mam")
    return "  <modules>\n%s  </modules>\n" % "".join(
        "    <module>%s</module>\n" % n for n in names
        if archiving or n not in ("mam", "muc_mam"))


class Jabshard(peerlib.Server):
    name = "jabshard"
    packages = []
    source_build = os.path.join(ROOT, "build", "default")
    build = None
    revision = None
    can_archive = True
    can_muc = True   # mod_muc is a default module: conference.localhost, 1,000 occupants a room
    web = True       # etc/jadc2s.xml's <http>: WebSocket at /xmpp-websocket, uploads at /upload

    def snapshot(self):
        """Copies the three programs to workdir/build/bin once; run.sh runs them from there. The
        version is the source tree's at that moment."""
        if self.build:
            return
        r = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                           capture_output=True, text=True)
        self.revision = r.stdout.strip() or "unknown"
        self.build = os.path.join(self.workdir, "build")
        os.makedirs(os.path.join(self.build, "bin"), exist_ok=True)
        for prog in ("jabshard-c2s", "jabshard-sm", "jabshardctl"):
            src = os.path.join(self.source_build, "bin", prog)
            if not os.access(src, os.X_OK):
                raise RuntimeError("%s is not built (make -j2 all)" % src)
            shutil.copy2(src, os.path.join(self.build, "bin", prog))

    def version(self):
        self.snapshot()
        return self.revision

    def _shadow(self):
        shadow = os.path.join(self.workdir, "root")
        for sub in ("tools", "etc"):
            os.makedirs(os.path.join(shadow, sub), exist_ok=True)
        link = os.path.join(shadow, "tools", "run.sh")
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink(os.path.join(ROOT, "tools", "run.sh"), link)
        with open(os.path.join(ROOT, "etc", "sm.xml")) as f:
            text = f.read()
        if self.archiving is not None:
            text = edit(text, "</sm>", modules_xml(self.archiving) + "</sm>")
        with open(os.path.join(shadow, "etc", "sm.xml"), "w") as f:
            f.write(text)
        with open(os.path.join(ROOT, "etc", "jadc2s.xml")) as f:
            text = f.read()
        text = edit(text, "<max_fds>10007</max_fds>", "<max_fds>%d</max_fds>" % MAX_FDS)
        text = edit(text, "<!-- <required>true</required> -->", "<required>false</required>")
        with open(os.path.join(shadow, "etc", "jadc2s.xml"), "w") as f:
            f.write(text)
        return shadow

    def archived_messages(self):
        """Rows of the archive table: two per message between two local accounts."""
        return peerlib.count_rows(os.path.join(self.workdir, "run", "jabshard.db"), "archive")

    def write_store(self, store, creds):
        self.snapshot()
        with open(os.path.join(ROOT, "etc", "sm.xml")) as f:
            cfg = edit(f.read(), "<path>./jabshard.db</path>",
                       "<path>%s/jabshard.db</path>" % store)
        cfg_path = os.path.join(self.workdir, "import-sm.xml")
        with open(cfg_path, "w") as f:
            f.write(cfg)
        lines = "".join("%s@localhost {SCRAM}%s:%d:%s:%s:%s:%d:%s:%s\n" % (
            c.user, peerlib.b64(c.salt.encode()), peerlib.ITERATIONS, c.sha1_stored, c.sha1_server,
            peerlib.b64(c.salt.encode()), peerlib.ITERATIONS, c.sha256_stored, c.sha256_server)
            for c in creds)
        r = subprocess.run([os.path.join(self.build, "bin", "jabshardctl"), "-c", cfg_path,
                            "import", "-"], input=lines, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("jabshardctl import: status %d: %s" % (r.returncode,
                                                                     r.stderr.strip()[-400:]))

    def write_rosters(self, store, n, k):
        """roster_items rows, subscription 3 (both), ask 0, and each roster's version bumped."""
        db = sqlite3.connect(os.path.join(store, "jabshard.db"))
        ids = dict(db.execute("SELECT username, id FROM users WHERE host = 'localhost'"))
        rows = ((ids["user%d" % (i + 1)], "user%d@localhost" % (j + 1))
                for i, contacts in peerlib.ring(n, k) for j in contacts)
        db.executemany("INSERT INTO roster_items (user_id, jid, name, subscription, ask) "
                       "VALUES (?, ?, NULL, 3, 0)", rows)
        db.execute("UPDATE users SET roster_version = roster_version + 1 WHERE host = 'localhost'")
        db.commit()
        db.close()

    def launch(self, run):
        self.snapshot()
        shutil.copy(os.path.join(self.certdir, "server.pem"), os.path.join(run, "server.pem"))
        env = dict(os.environ, JABSHARD_RUN_DIR=run, JABSHARD_IP="127.0.0.1",
                   JABSHARD_PORT=str(self.port), JABSHARD_TLS_PORT=str(self.tls_port),
                   JABSHARD_SM_PORT=str(self.port + 10), JABSHARD_LOG_LEVEL="warn",
                   JABSHARD_HTTP_PORT=str(self.http_port), JABSHARD_HTTPS_PORT=str(self.https_port),
                   JABSHARD_LIMITS=LIMITS)
        run_sh = os.path.join(self._shadow(), "tools", "run.sh")
        return [peerlib.spawn(["/bin/sh", run_sh, self.build], os.path.join(run, "log", "run.out"),
                              env=env, cwd=run)]
