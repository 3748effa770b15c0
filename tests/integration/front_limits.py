#!/usr/bin/python3
"""tests/integration/front_limits.py — the front's per-address limits, end to end with the SM:

- conn_rate: past <conn_rate> new connections per <conn_interval> from one address, a new
  connection gets <policy-violation/> and is closed; the connections already open are untouched;
- ip_auth_failures: past that many failed authentications from one address per
  <ip_auth_interval>, every further outcome (success included) comes <auth_delay> late.

Usage: front_limits.py BUILD_DIR. Prints ok/not ok lines and "front_limits: N passed, N failed".
"""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import front_load as fl  # noqa: E402

AUTH_DELAY_MS = 1500


def plain_stream(port):
    s = socket.create_connection(("127.0.0.1", port), 5)
    s.settimeout(10)
    s.sendall(fl.HEADER.encode())
    return s


def read_all(s, until=None):
    data = b""
    try:
        while until is None or until not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    return data


def limits_body(d, procs):
    limits = ("<conn_rate>4</conn_rate><conn_interval>30</conn_interval><max_bps>0</max_bps>"
              "<auth_failures>10</auth_failures><ip_auth_failures>2</ip_auth_failures>"
              f"<ip_auth_interval>60</ip_auth_interval><auth_delay>{AUTH_DELAY_MS}</auth_delay>")
    ports = fl.start_system(d, 2, limits, procs)
    if not ports:
        return
    # conn_rate: 4 connections in the window pass (one was used by start_system's port probe,
    # which connected to the TLS port: so 3 more), the next is refused.
    first = [plain_stream(ports["c2s"]) for _ in range(3)]
    heads = [read_all(s, b"</stream:features>") for s in first]
    fl.check("conn_rate: connections within the rate are served",
             all(b"</stream:features>" in h for h in heads))
    extra = plain_stream(ports["c2s"])
    data = read_all(extra)
    fl.check("conn_rate: the next one gets <policy-violation/> and is closed",
             b"<policy-violation" in data and data.rstrip().endswith(b"</stream:stream>"),
             repr(data[-200:]))
    # An open connection still works: STARTTLS is answered.
    first[0].sendall(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    answer = read_all(first[0], b"<proceed")
    fl.check("conn_rate: the connections already open are untouched", b"<proceed" in answer,
             repr(answer[-200:]))
    for s in first + [extra]:
        s.close()

    # ip_auth_failures, from other addresses (127.0.0.2, 127.0.0.3): 127.0.0.1 is over its
    # conn_rate for the rest of the 30 s window, on both ports.
    def tls_client(source):
        raw = socket.socket()
        raw.bind((source, 0))
        raw.settimeout(10)
        raw.connect(("127.0.0.1", ports["ssl"]))
        s = fl.tls_context().wrap_socket(raw)
        s.sendall(fl.HEADER.encode())
        read_all(s, b"</stream:features>")
        return s

    def attempt(s, user, password):
        t0 = time.monotonic()
        s.sendall(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
                  f"{fl.plain(user, password)}</auth>".encode())
        data = b""
        while b"</failure>" not in data and b"<success" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return data, (time.monotonic() - t0) * 1000

    # Connections are not failures: from a third address, more logins on new connections than
    # ip_auth_failures (a NAT shared by many users) are all answered at once.
    logins = []
    for _ in range(3):
        s = tls_client("127.0.0.3")
        logins.append(attempt(s, "u0", "pw0"))
        s.close()
    fl.check("ip_auth_failures: successful logins on new connections from one address are not "
             "delayed (%s ms)" % ", ".join("%.0f" % r[1] for r in logins),
             all(b"<success" in r[0] and r[1] < AUTH_DELAY_MS for r in logins), repr(logins))

    s = tls_client("127.0.0.2")
    results = [attempt(s, "u0", "wrong") for _ in range(3)]
    fl.check("ip_auth_failures: failures are answered",
             all(b"<not-authorized" in r[0] for r in results), repr(results))
    fl.check(f"ip_auth_failures: the third failure's answer waited {AUTH_DELAY_MS} ms "
             f"({results[2][1]:.0f} ms)", results[2][1] >= AUTH_DELAY_MS)
    data, ms = attempt(s, "u0", "pw0")
    fl.check(f"ip_auth_failures: a success from that address waits too ({ms:.0f} ms)",
             b"<success" in data and ms >= AUTH_DELAY_MS, repr(data[-200:]))
    s.close()


if __name__ == "__main__":
    sys.exit(fl.run("front_limits", limits_body))
