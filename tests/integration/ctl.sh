#!/bin/sh
# tests/integration/ctl.sh — jabshardctl end to end on SQLite: accounts, bulk import, and the
# configuration errors every program reports (file:line: <element>: message, exit status 2).
# Usage: ctl.sh BUILD_DIR
set -u
ctl="$1/bin/jabshardctl"
dir=$(mktemp -d /tmp/jabshard-ctl.XXXXXX)
trap 'rm -rf "$dir"' EXIT
passed=0 failed=0

# check NAME EXPECTED_STATUS COMMAND...: runs COMMAND (stdout+stderr to $dir/out).
check() {
    name=$1 expect=$2; shift 2
    "$@" > "$dir/out" 2>&1
    status=$?
    if [ "$status" -eq "$expect" ]; then
        passed=$((passed + 1)); echo "ok - $name"
    else
        failed=$((failed + 1)); echo "not ok - $name (exit $status, expected $expect)"; sed 's/^/    /' "$dir/out"
    fi
}

# expect_output NAME TEXT: the last check's output contains TEXT.
expect_output() {
    if grep -qF -- "$2" "$dir/out"; then
        passed=$((passed + 1)); echo "ok - $1"
    else
        failed=$((failed + 1)); echo "not ok - $1: no \"$2\" in:"; sed 's/^/    /' "$dir/out"
    fi
}

cat > "$dir/sm.xml" <<XML
<sm>
  <service id='jadc2s' role='front'><accept><ip>127.0.0.1</ip><port>5111</port><secret>s</secret></accept></service>
  <host name='localhost'><register/></host>
  <host name='example.org'/>
  <storage><driver>sqlite</driver><path>$dir/db.sqlite</path></storage>
</sm>
XML
c="-c $dir/sm.xml"

check "adduser with the password as an argument" 0 "$ctl" $c adduser alice@localhost secret
check "adduser with the password on stdin" 0 sh -c "echo 'pass word' | '$ctl' $c adduser Bob@LocalHost"
check "adduser of an existing account is refused" 1 "$ctl" $c adduser alice@localhost other
expect_output "...saying so" "alice@localhost already exists"
check "adduser on a host that is not served is refused" 1 "$ctl" $c adduser carol@elsewhere.net pw
check "adduser of a JID with a resource is refused" 1 "$ctl" $c adduser dave@localhost/desk pw
check "listusers" 0 "$ctl" $c listusers
expect_output "...lists alice" "alice@localhost"
expect_output "...lists bob, normalised" "bob@localhost"
check "passwd" 0 "$ctl" $c passwd bob@localhost new
check "passwd of a missing account" 1 "$ctl" $c passwd nobody@localhost new
check "deluser" 0 "$ctl" $c deluser bob@localhost
check "deluser twice" 1 "$ctl" $c deluser bob@localhost
expect_output "...saying so" "no such user bob@localhost"

cat > "$dir/import.txt" <<TXT
# comment lines and blank lines are skipped

erin@localhost first password
frank@example.org p2
alice@localhost already-there
not-a-jid
grace@unknown.host pw
TXT
check "import reports the lines it refused" 1 "$ctl" $c import "$dir/import.txt"
expect_output "...counts" "imported 2 accounts, 3 failed"
expect_output "...names the duplicate's line" "import line 5: alice@localhost: already exists"
expect_output "...names the bad line" "import line 6:"
check "imported accounts are listed" 0 "$ctl" $c listusers example.org
expect_output "...with their host" "frank@example.org"

# Credentials exported by another server (password "pencil" with the salts of the RFC 5802 and
# RFC 7677 examples), and a malformed such line.
scram='{SCRAM}QSXCR+Q6sek8bf92:4096:6dlGYMOdZcOPutkcNY8U2g7vK9Y=:D+CSWLOshSulAsxiupA+qs2/fTE=:W22ZaJ0SNY7soEsUEjb6gQ==:4096:WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU='
printf 'imported@localhost %s\nbroken@localhost {SCRAM}QSXCR+Q6sek8bf92:4096:short\n' "$scram" > "$dir/hashed.txt"
check "import of exported SCRAM credentials" 1 "$ctl" $c import "$dir/hashed.txt"
expect_output "...takes the good line" "imported 1 accounts, 1 failed"
expect_output "...refuses the malformed one" "import line 2: malformed {SCRAM} credentials"
check "the imported account is listed" 0 "$ctl" $c listusers localhost
expect_output "...by name" "imported@localhost"

# Configuration errors: file, line and element, and exit status 2.
printf '<sm>\n  <host name="localhost"/>\n  <storage><drver>sqlite</drver></storage>\n</sm>\n' > "$dir/typo.xml"
check "a misspelt element is a config error" 2 "$ctl" -c "$dir/typo.xml" listusers
expect_output "...naming file, line and element" "$dir/typo.xml:3: <storage/drver>: unknown element"
printf '<sm>\n  <host name="localhost"/>\n  <storage>\n    <workers>many</workers>\n  </storage>\n</sm>\n' > "$dir/value.xml"
check "a bad number is a config error" 2 "$ctl" -c "$dir/value.xml" listusers
expect_output "...naming file, line and element" "$dir/value.xml:4: <storage/workers>:"
printf '<sm>\n  <host name="localhost">\n</sm>\n' > "$dir/syntax.xml"
check "an XML syntax error is a config error" 2 "$ctl" -c "$dir/syntax.xml" listusers
expect_output "...naming the file and line" "$dir/syntax.xml:3"
printf '<sm>\n  <host name="localhost"/>\n  <storage><driver>oracle</driver></storage>\n</sm>\n' > "$dir/enum.xml"
check "an unknown storage driver is a config error" 2 "$ctl" -c "$dir/enum.xml" listusers
expect_output "...naming file, line and element" "$dir/enum.xml:3: <storage/driver>:"
check "a missing config file is an error" 2 "$ctl" -c "$dir/none.xml" listusers
expect_output "...naming the file" "$dir/none.xml"
check "an unknown command is a usage error" 2 "$ctl" $c frobnicate

echo "ctl: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
