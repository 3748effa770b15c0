-- tests/bench/peers/prosody.cfg.lua: Prosody for the peer benchmark (server_prosody.py fills in
-- the upper-case names between at signs). Debian's default modules, less mod_limits (traffic
-- shaping) and those that only serve s2s, daemonizing or the admin shell; encryption optional so
-- plain TCP can be measured; stanza size limits raised; a listen backlog of 1,024 like jabshard's;
-- no s2s listener; HTTP and HTTPS for web clients (scenario_web.py, scenario_upload.py):
-- mod_websocket, counting ws:// from loopback as secure, and http_file_share at upload.localhost
-- with limits above the benchmark's (16 MiB a file, no daily quota to speak of); logging at warn; data, pidfile and log in the run directory. With
-- archiving (scenario_mam.py) mod_mam on the same storage, archiving every account's messages.
-- With group chat (scenario_muc.py) a muc component after the host (server_prosody.py).
pidfile = "@RUN@/prosody.pid"
data_path = "@RUN@"
plugin_paths = { }
admins = { }
network_backend = "epoll"
network_settings = { tcp_backlog = 1024 }
interfaces = { "127.0.0.1" }
c2s_ports = { @PORT@ }
c2s_direct_tls_ports = { @TLS_PORT@ }
s2s_ports = { }
http_ports = { @HTTP_PORT@ }
https_ports = { @HTTPS_PORT@ }
http_interfaces = { "127.0.0.1" }
https_interfaces = { "127.0.0.1" }
consider_websocket_secure = true
http_max_content_size = 67108864
component_ports = { }

modules_enabled = {
	"disco"; "roster"; "saslauth"; "tls"; "blocklist"; "bookmarks"; "carbons";
	"pep"; "private"; "smacks"; "vcard4"; "vcard_legacy"; "csi_simple"; "ping";
	"register"; "time"; "uptime"; "version"; "offline"; "websocket"; @MAM_MODULE@
}
@MAM_POLICY@
modules_disabled = { "s2s"; "limits"; "admin_shell"; "posix" }

authentication = "internal_hashed"
storage = "internal"
allow_registration = false
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
c2s_stanza_size_limit = 16777216
c2s_unauthed_stanza_size_limit = 16777216

certificates = "@CERT@"
ssl = {
	certificate = "@CERT@/cert.pem";
	key = "@CERT@/key.pem";
}
https_ssl = {
	certificate = "@CERT@/cert.pem";
	key = "@CERT@/key.pem";
}

log = {
	warn = "@RUN@/log/prosody.log";
}

VirtualHost "localhost"

@MUC_COMPONENT@

Component "upload.localhost" "http_file_share"
	http_file_share_size_limit = 16777216
	http_file_share_daily_quota = 107374182400
	http_file_share_path = "@RUN@/http_file_share"
