# tests/bench/peers/server_prosody.py: Prosody (Debian's), from prosody.cfg.lua, accounts written
# as internal_hashed account files (the SCRAM-SHA-1 keys Prosody itself would store); rosters
# (scenario_pep.py) as its internal roster files. Archiving on (scenario_mam.py): mod_mam on its
# internal storage (archive/USER.list), every account's policy "always". Web clients:
# mod_websocket at /xmpp-websocket and the http_file_share component at upload.localhost.
import os

import peerlib


# Group chat (scenario_muc.py): the muc component at conference.localhost. Prosody 0.12 has no
# occupant limit (no muc#roomconfig_maxusers); anyone may create rooms; no tombstones, no mod_muc_mam
# (no room logging); history kept in memory as by default.
MUC_COMPONENT = """Component "conference.localhost" "muc"
	restrict_room_creation = false
	muc_tombstones = false
	muc_room_default_public = false
"""


def write_accounts(data_path, host, creds):
    """CREDS (peerlib.Cred) as HOST's internal_hashed account files under DATA_PATH (Prosody's
    data_path: the host's directory name has every character but letters and digits escaped,
    "." as %2e, as its datamanager does); jabtest.federation's Prosody uses it too."""
    encoded = "".join(ch if ch.isalnum() else "%%%02x" % ord(ch) for ch in host)
    accounts = os.path.join(data_path, encoded, "accounts")
    os.makedirs(accounts, exist_ok=True)
    for c in creds:
        with open(os.path.join(accounts, c.user + ".dat"), "w") as f:
            f.write('return {\n\t["iteration_count"] = %d;\n\t["salt"] = "%s";\n'
                    '\t["server_key"] = "%s";\n\t["stored_key"] = "%s";\n};\n'
                    % (peerlib.ITERATIONS, c.salt, peerlib.hexkey(c.sha1_server),
                       peerlib.hexkey(c.sha1_stored)))


class Prosody(peerlib.Server):
    name = "prosody"
    packages = ["prosody", "lua-unbound"]
    user = "prosody"
    can_archive = True
    can_muc = True
    web = True

    def version(self):
        return peerlib.package_version("prosody")

    def write_store(self, store, creds):
        write_accounts(store, "localhost", creds)

    def write_rosters(self, store, n, k):
        """localhost/roster/USER.dat as mod_roster's internal storage keeps it: the version under
        [false], each item with subscription "both"."""
        rosters = os.path.join(store, "localhost", "roster")
        os.makedirs(rosters, exist_ok=True)
        for i, contacts in peerlib.ring(n, k):
            with open(os.path.join(rosters, "user%d.dat" % (i + 1)), "w") as f:
                f.write('return {\n\t[false] = {\n\t\t["version"] = 1;\n\t\t["pending"] = {};\n\t};\n')
                for j in contacts:
                    f.write('\t["user%d@localhost"] = {\n\t\t["groups"] = {};\n'
                            '\t\t["subscription"] = "both";\n\t};\n' % (j + 1))
                f.write('};\n')

    def archived_messages(self):
        """Items of the archive lists (one "item(...);" each, datamanager's list format)."""
        archive = os.path.join(self.workdir, "run", "localhost", "archive")
        if not os.path.isdir(archive):
            return 0
        n = 0
        for name in os.listdir(archive):
            with open(os.path.join(archive, name), errors="replace") as f:
                n += sum(1 for line in f if line.startswith("item("))
        return n

    def launch(self, run):
        cfg = os.path.join(run, "prosody.cfg.lua")
        peerlib.render("prosody.cfg.lua", cfg, {"RUN": run, "PORT": self.port,
                                                "TLS_PORT": self.tls_port, "CERT": self.certdir,
                                                "HTTP_PORT": self.http_port,
                                                "HTTPS_PORT": self.https_port,
                                                "MAM_MODULE": '"mam";' if self.archiving else "",
                                                "MAM_POLICY": "default_archive_policy = true"
                                                if self.archiving else "",
                                                "MUC_COMPONENT": MUC_COMPONENT if self.muc else ""})
        os.chmod(cfg, 0o644)
        return [peerlib.spawn(["prosody", "--config", cfg, "-F"], os.path.join(run, "log", "stdout"),
                              user=self.user, cwd=run)]
