# tests/bench/peers/server_ejabberd.py: ejabberd (Debian's) from ejabberd.yml and ejabberdctl.cfg,
# started with "ejabberdctl foreground" as the ejabberd user; accounts inserted into its SQLite
# database (Debian's lite.sql schema) as SCRAM-SHA-1 keys, the form auth_password_format: scram
# stores; rosters (scenario_pep.py) into its rosterusers table. Archiving on (scenario_mam.py):
# mod_mam on SQL (its archive table), default policy always. Web clients: ejabberd_http with
# ejabberd_http_ws at /ws and mod_http_upload at /upload (upload.localhost hands out the slots).
import os
import sqlite3

import peerlib

SCHEMA = "/usr/share/ejabberd/sql/lite.sql"


# Group chat (scenario_muc.py): mod_muc at conference.localhost, anyone may create rooms, rooms of
# up to 2,000 occupants (the default is 200) with presence broadcast to all of them (the default
# stops at 1,000), no room logging or archiving, rooms in memory (Mnesia), not SQL.
MUC_MODULE = """  mod_muc:
    host: "conference.localhost"
    access: all
    access_create: all
    access_persistent: all
    access_admin: none
    db_type: mnesia
    ram_db_type: mnesia
    max_users: 2000
    max_users_presence: 2000
    default_room_options:
      max_users: 2000
      logging: false
      mam: false
"""


def write_accounts(path, creds):
    """A new SQLite database at PATH (Debian's schema) holding CREDS (peerlib.Cred) as SCRAM-SHA-1
    keys; jabtest.federation's Ejabberd uses it too."""
    db = sqlite3.connect(path)
    with open(SCHEMA) as f:
        db.executescript(f.read())
    db.executemany("INSERT INTO users (username, password, serverkey, salt, iterationcount) "
                   "VALUES (?, ?, ?, ?, ?)",
                   ((c.user, c.sha1_stored, c.sha1_server, peerlib.b64(c.salt.encode()),
                     peerlib.ITERATIONS) for c in creds))
    db.commit()
    db.close()


class Ejabberd(peerlib.Server):
    name = "ejabberd"
    packages = ["ejabberd", "erlang-p1-sqlite3"]
    user = "ejabberd"
    can_archive = True
    can_muc = True
    web = True
    ws_path = "/ws"

    def version(self):
        return peerlib.package_version("ejabberd")

    def write_store(self, store, creds):
        write_accounts(os.path.join(store, "ejabberd.db"), creds)

    def write_rosters(self, store, n, k):
        """rosterusers rows as mod_roster_sql writes them: subscription B (both), ask N (none)."""
        db = sqlite3.connect(os.path.join(store, "ejabberd.db"))
        db.executemany("INSERT INTO rosterusers (username, jid, nick, subscription, ask, askmessage, "
                       "server, subscribe, type) VALUES (?, ?, '', 'B', 'N', '', 'N', '', 'item')",
                       (("user%d" % (i + 1), "user%d@localhost" % (j + 1))
                        for i, contacts in peerlib.ring(n, k) for j in contacts))
        db.commit()
        db.close()

    def archived_messages(self):
        """Rows of mod_mam's archive table (old schema), one per message and archive."""
        return peerlib.count_rows(os.path.join(self.workdir, "run", "ejabberd.db"), "archive")

    def launch(self, run):
        values = {"RUN": run, "PORT": self.port, "TLS_PORT": self.tls_port, "CERT": self.certdir,
                  "DIST_PORT": self.port + 10,
                  "HTTP_PORT": self.http_port, "HTTPS_PORT": self.https_port,
                  "MAM_MODULE": "  mod_mam: {db_type: sql, default: always}" if self.archiving
                  else "",
                  "MUC_MODULE": MUC_MODULE if self.muc else ""}
        cfg, ctl = os.path.join(run, "ejabberd.yml"), os.path.join(run, "ejabberdctl.cfg")
        peerlib.render("ejabberd.yml", cfg, values)
        peerlib.render("ejabberdctl.cfg", ctl, values)
        for path in (cfg, ctl):
            os.chmod(path, 0o644)
        write_inetrc(run)
        peerlib.chown_tree(run, self.user)
        return [peerlib.spawn(ejabberdctl(run, "ejabberd-bench@localhost", "foreground"),
                              os.path.join(run, "log", "stdout"), user=self.user,
                              env=ejabberdctl_env(run), cwd=run)]


def write_inetrc(run):
    """RUN/inetrc (ejabberdctl passes CONFIG_DIR/inetrc as ERL_INETRC): host names from
    /etc/hosts first, then the system's resolver; and RUN/mnesia, the spool."""
    with open(os.path.join(run, "inetrc"), "w") as f:
        f.write("{lookup, [file, native]}.\n")
    os.makedirs(os.path.join(run, "mnesia"), exist_ok=True)


def ejabberdctl(run, node, *command):
    """ejabberdctl's command line for the instance whose ejabberd.yml, ejabberdctl.cfg, spool
    (mnesia/) and logs (log/) are in RUN, Erlang node NODE: "foreground" starts it, any other
    COMMAND ("register", USER, HOST, PASSWORD) talks to it (same node, same HOME: same cookie)."""
    return ["ejabberdctl", "--config-dir", run, "--config", os.path.join(run, "ejabberd.yml"),
            "--ctl-config", os.path.join(run, "ejabberdctl.cfg"),
            "--spool", os.path.join(run, "mnesia"), "--logs", os.path.join(run, "log"),
            "--node", node] + list(command)


def ejabberdctl_env(run):
    """HOME in RUN: the Erlang cookie (.erlang.cookie) is the instance's own."""
    return dict(os.environ, HOME=run)
