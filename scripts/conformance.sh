#!/usr/bin/env bash
# Runs the Durable Streams server conformance suite (conformance/) against a
# freshly started streamd, then the official TypeScript client's resilience
# checks (conformance/client-resilience.mjs) against the same server.
#
# usage: scripts/conformance.sh <durable|memory> [path-to-streamd-binary]
#
#   durable  start streamd with --data-dir in a temporary directory
#   memory   start streamd with --memory
#
# Without a binary argument, ./bin/streamd is built from ./cmd/streamd.
# The script exits with the status of the vitest run.
#
# Environment:
#   STREAMD_LONG_POLL_TIMEOUT_MS    long-poll timeout the suite assumes (default 20000)
#   STREAMD_STARTUP_TIMEOUT         seconds to wait for streamd to answer (default 30)
#   STREAMD_STOP_GRACE              seconds between SIGTERM and SIGKILL (default 10)
#   STREAMD_CONFORMANCE_LONG_POLL_TIMEOUT  streamd --long-poll-timeout (default 3s)
#   STREAMD_EXTRA_ARGS              extra streamd flags, split on whitespace
#                                   (e.g. "--long-poll-timeout 10s")
# shellcheck disable=SC2317 # functions below are invoked from traps
set -euo pipefail

usage() {
	echo "usage: $0 <durable|memory> [path-to-streamd-binary]" >&2
	exit 2
}

[[ $# -ge 1 && $# -le 2 ]] || usage
mode=$1
case "$mode" in
durable | memory) ;;
*) usage ;;
esac

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"
startup_timeout=${STREAMD_STARTUP_TIMEOUT:-30}
stop_grace=${STREAMD_STOP_GRACE:-10}

echo "== conformance ($mode mode) =="

if [[ $# -eq 2 ]]; then
	bin=$2
	[[ $bin == /* ]] || bin="$PWD/$bin"
	if [[ ! -x $bin ]]; then
		echo "conformance: $bin is not an executable file" >&2
		exit 2
	fi
else
	echo "conformance: building bin/streamd"
	(cd "$root" && go build -o bin/streamd ./cmd/streamd)
	bin="$root/bin/streamd"
fi

if [[ ! -x "$root/conformance/node_modules/.bin/vitest" ]]; then
	echo "conformance: installing the suite (npm ci)"
	(cd "$root/conformance" && npm ci --no-audit --no-fund)
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/streamd-conformance.XXXXXX")
server_pid=""
stdout_log="$tmp/server.stdout.log"
stderr_log="$tmp/server.stderr.log"

print_server_logs() {
	echo "---- streamd stderr (last 100 lines) ----" >&2
	tail -n 100 "$stderr_log" >&2 || true
	if [[ -s $stdout_log ]]; then
		echo "---- streamd stdout (last 30 lines) ----" >&2
		tail -n 30 "$stdout_log" >&2 || true
	fi
	echo "---- end of streamd logs ----" >&2
}

stop_server() {
	[[ -n $server_pid ]] || return 0
	stop_pid "$server_pid" "$stop_grace" "conformance: streamd"
	server_pid=""
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop_server
	if ((rc != 0)); then
		print_server_logs
	fi
	rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Pick a free loopback port: bind port 0, read the assigned port, release it.
port=$(node -e '
const s = require("net").createServer()
s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close() })
')
addr="127.0.0.1:$port"
url="http://$addr"

# The suite gives each long-poll test about 20s (plus vitest's 30s test
# timeout) and some wait for a server-side long-poll timeout to answer 204,
# so streamd runs here with a short one instead of its 30s default.
# --test-endpoints: the official client's resilience checks below arm
# faults through /_test/inject-error after the suite.
args=(--addr "$addr" --long-poll-timeout "${STREAMD_CONFORMANCE_LONG_POLL_TIMEOUT:-3s}" --test-endpoints)
if [[ $mode == durable ]]; then
	args+=(--data-dir "$tmp/data")
else
	args+=(--memory)
fi
if [[ -n ${STREAMD_EXTRA_ARGS:-} ]]; then
	read -r -a extra_args <<<"$STREAMD_EXTRA_ARGS"
	args+=("${extra_args[@]}")
fi

echo "conformance: starting $bin ${args[*]}"
"$bin" "${args[@]}" >"$stdout_log" 2>"$stderr_log" </dev/null &
server_pid=$!
echo "conformance: streamd pid $server_pid"

# Wait until streamd answers HTTP at all (any status code).
deadline=$((SECONDS + startup_timeout))
while :; do
	if ! kill -0 "$server_pid" 2>/dev/null; then
		status=0
		wait "$server_pid" || status=$?
		server_pid=""
		echo "conformance: streamd exited with status $status before answering on $url" >&2
		exit 1
	fi
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url/v1/stream/__probe" || true)
	if [[ -n $code && $code != 000 ]]; then
		echo "conformance: streamd answers on $url (probe status $code)"
		break
	fi
	if ((SECONDS >= deadline)); then
		echo "conformance: streamd did not answer on $url within ${startup_timeout}s" >&2
		exit 1
	fi
	sleep 0.2
done

results="$tmp/results.json"
vitest_status=0
(
	cd "$root/conformance"
	STREAMD_URL=$url npx --no-install vitest run \
		--reporter=default --reporter=json --outputFile.json="$results"
) || vitest_status=$?

echo "conformance ($mode mode): vitest exited with status $vitest_status"
if [[ -s $results ]]; then
	# shellcheck disable=SC2016 # JavaScript template literal, not shell
	node -e '
const r = require(process.argv[1])
const skipped = (r.numPendingTests || 0) + (r.numTodoTests || 0)
console.log(`conformance: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`)
' "$results" || true
fi

# The official TypeScript client against the same server, through injected
# faults: it must recover, and no fault may change what is stored.
client_status=0
(cd "$root/conformance" && STREAMD_URL=$url node client-resilience.mjs) || client_status=$?

if ((vitest_status != 0)); then
	exit "$vitest_status"
fi
exit "$client_status"
