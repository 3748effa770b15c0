"""jabtest — the one support library of the integration suites (tests/integration/test_*.py).

Each suite is one Python file run by /usr/bin/python3 (Debian's python3-slixmpp is importable
from the system Python only) with the build directory as its argument; it prints ok / not ok
lines and ends with "NAME: N passed, N failed". The modules, each owning one concern:

  suite    main(): what every suite's main does (BUILD_DIR, signals, the summary, the status)
  report   Report (the ok / not ok lines, the summary line, the exit status) and Failure
  proc     process helpers: alive, rss_kib, wait_until
  system   the system under test: programs started and stopped by PID, their logs, free ports,
           configurations prepared by tools/run.sh or written by hand, accounts via jabshardctl
  loadgen  tests/bench/loadgen in the background, its lines parsed as they come
  xmpp     what clients share: the server's address, namespaces, stanza helpers, TLS contexts
  raw      Raw, an XMPP stream driven by hand over a socket
  client   Client, a slixmpp client that records every stanza it receives
  profanity Profanity, the terminal client, driven in tmux: lines typed, the screen read, the
           stanzas of its debug log
  link     the link's raw ends: smproto frames, a hand-made front, a fake SM, a component stream
  federation the world a federation suite runs in: its own network and mount namespace, unbound
           serving SRV records, a test CA, Debian's Prosody and ejabberd on their own domains
  runner   tests/run-integration.sh: runs every suite and sums their summary lines

Every wait is bounded; every process a suite starts is stopped by its PID."""
