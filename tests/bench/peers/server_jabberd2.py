# tests/bench/peers/server_jabberd2.py: jabberd2 (Debian's): router, session manager and client
# front, three processes started in that order from the templates in jabberd2/, as the jabber
# user. Accounts go straight into the SQLite database both use (Debian's db-setup.sqlite schema):
# the authreg row (jabberd2 keeps passwords in plain text: GNU SASL derives SCRAM from them) and
# the SM's "active" row, without which the SM refuses the session.
import gzip
import os
import sqlite3
import time

import peerlib

SCHEMA = "/usr/share/doc/jabberd2/db-setup.sqlite.gz"
BINARIES = ("jabberd2-router", "jabberd2-sm", "jabberd2-c2s")


class Jabberd2(peerlib.Server):
    name = "jabberd2"
    packages = ["jabberd2"]
    user = "jabber"

    def version(self):
        return peerlib.package_version("jabberd2")

    def write_store(self, store, creds):
        db = sqlite3.connect(os.path.join(store, "jabberd2.db"))
        with gzip.open(SCHEMA, "rt") as f:
            db.executescript(f.read())
        now = int(time.time())
        db.executemany('INSERT INTO "authreg" ("username", "realm", "password") VALUES (?, ?, ?)',
                       ((c.user, "localhost", c.password) for c in creds))
        db.executemany('INSERT INTO "active" ("collection-owner", "time") VALUES (?, ?)',
                       ((c.user + "@localhost", now) for c in creds))
        db.commit()
        db.close()

    def launch(self, run):
        router_port = self.port + 25
        values = {"RUN": run, "PORT": self.port, "TLS_PORT": self.tls_port, "CERT": self.certdir,
                  "ROUTER_PORT": router_port, "SECRET": os.urandom(12).hex(),
                  "MAX_FDS": 65536}
        for name in ("router.xml", "router-users.xml", "sm.xml", "c2s.xml"):
            peerlib.render(os.path.join("jabberd2", name), os.path.join(run, name), values)
            os.chmod(os.path.join(run, name), 0o644)
        procs = []
        for binary, cfg, wait in zip(BINARIES, ("router.xml", "sm.xml", "c2s.xml"),
                                     ([router_port], None, None)):
            procs.append(peerlib.spawn(["/usr/sbin/" + binary, "-c", os.path.join(run, cfg)],
                                       os.path.join(run, "log", binary + ".out"), user=self.user,
                                       cwd=run))
            if wait:
                peerlib.wait_listening(wait, [p.pid for p in procs], 20)
            else:
                time.sleep(0.5)
        return procs
