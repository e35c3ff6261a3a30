#!/usr/bin/env bash
# Benchmarks streamd with the load tool (cmd/streambench) against the same
# loads on comparison targets, one server at a time, and prints a table per
# load with streamd's ratios to the others.
#
# usage: scripts/bench.sh [--smoke | --quick] [--help]
#
#   (no flag)  the full benchmark (about 10-15 minutes on 2 cores)
#   --quick    every load on every target with tiny parameters (same as BENCH_QUICK=1)
#   --smoke    one tiny run of each scenario against streamd only (about 10 s);
#              fails if a run fails or reports errors or missing messages.
#              Needs neither the Node reference server nor bench/'s npm install.
#
# Targets (BENCH_TARGETS, default all four, in this order):
#   streamd      bin/streamd --data-dir <fresh temp dir>, default flags (durable)
#   node-memory  the Node reference server (bench/reference-server.mjs), in memory
#   node-file    the Node reference server, file-backed in a fresh temp dir
#   ceiling      streambench ceiling: a minimal in-memory server, the upper bound
#                of what the load tool and this machine can do
#
# Loads, by case id (BENCH_SCENARIOS selects by case id or scenario name):
#   append-1x1 append-16x16 append-64x100  appends of 256-byte bodies (writers x streams)
#   read-256mib      catch-up read of a 256 MiB stream written in 1 MiB appends, 3 times
#   longpoll-10k     10,000 long-poll readers x 5 rounds of one 256-byte append
#   longpoll-50k     50,000 readers from 4 loopback source IPs; streamd and ceiling only
#                    (as many as ulimit -n allows: each reader holds a connection)
#   longpoll-50k-h2c the same 50,000 readers over HTTP/2 without TLS, 256 to a
#                    connection; streamd and ceiling only
#   sse-1k sse-200   SSE subscribers to a stream appended 50 times/s with 256 bytes
#   streams-10k      create 10,000 streams, 16 at a time
#   manystreams-1m   streamd only: create 1,000,000 streams (256-byte first body),
#                    random appends at 1k/100k/1M streams, RSS after passivation,
#                    5 graceful restarts and one after SIGKILL (the load tool
#                    runs streamd itself, with default flags and BENCH_STREAMD_ARGS)
# Case ids name the actual size (read-8mib, longpoll-100, ... with --quick).
#
# Servers run one at a time. For each case a fresh server (with a fresh data
# directory) is started on a free loopback port and probed until it answers
# HTTP, so that no case inherits another's streams, heap or RSS; the load
# tool gets -server-pid for RSS sampling and -label <target>; then the server
# is stopped with SIGTERM (SIGKILL after BENCH_STOP_GRACE seconds).
# BENCH_FRESH_SERVER=0 keeps one server per target for all its cases (one
# that dies is started again for the next case). A case that fails, or a
# server that dies, is recorded and the run goes on.
#
# Results go to BENCH_RESULTS_DIR (default bench/results/<date>-<time>/):
#   raw.jsonl       the load tool's JSON lines, unchanged
#   results.jsonl   one line per case and target: status, wall time, notes and
#                   the tool's result
#   table.md        the tables printed at the end
#   machine.txt     machine description; commands.txt: every command run
#   logs/           server and load tool stderr
#
# Environment:
#   BENCH_TARGETS         targets to run, e.g. "streamd ceiling"
#   BENCH_SCENARIOS       case ids or scenario names, e.g. "append longpoll-10k"
#   BENCH_QUICK=1         tiny parameters (like --quick); the defaults below are
#                         those of the full run
#   BENCH_DURATION        measured duration of append and sse cases (default 10s)
#   BENCH_WARMUP          append warm-up (default 1s)
#   BENCH_READ_MIB        size of the read case's stream (default 256)
#   BENCH_READ_MIB_NODE   the same for the Node reference targets (default 256)
#   BENCH_READ_REPEAT     reads of the whole stream per read case (default 3)
#   BENCH_LONGPOLL_READERS      readers of longpoll-10k (default 10000)
#   BENCH_LONGPOLL_BIG_READERS  readers of longpoll-50k (default 50000)
#   BENCH_LONGPOLL_ROUNDS       rounds per long-poll case (default 5)
#   BENCH_LONGPOLL_SOURCE_IPS   loopback source addresses for longpoll-50k (default 4)
#   BENCH_LONGPOLL_SETTLE       pause before each long-poll round (default 2s)
#   BENCH_SSE_SUBSCRIBERS subscriber counts, one sse case each (default "1000 200")
#   BENCH_SSE_RATE        messages per second in the sse cases (default 50)
#   BENCH_STREAMS         streams created by streams-10k (default 10000)
#   BENCH_MANY_STREAMS    streams of manystreams-1m (default 1000000)
#   BENCH_MANY_IDLE_WAIT  wait for passivation in manystreams-1m (default 70s,
#                         longer than streamd's default --actor-idle-timeout)
#   BENCH_TIMEOUT         the load tool's -timeout per case (default 5m)
#   BENCH_HARD_TIMEOUT    a case's load tool is killed after this (default 7m)
#   BENCH_PAUSE           seconds between cases (default 1)
#   BENCH_FRESH_SERVER=0  one server per target instead of one per case
#   BENCH_RESULTS_DIR     where results go
#   BENCH_STREAMD_ARGS    extra streamd flags, split on whitespace
#   BENCH_STARTUP_TIMEOUT seconds to wait for a server to answer (default 30)
#   BENCH_STOP_GRACE      seconds between SIGTERM and SIGKILL (default 15)
#   STREAMD_BIN           prebuilt streamd (default: build bin/streamd)
#   STREAMBENCH_BIN       prebuilt load tool (default: build bin/streambench)
#
# A long-poll or SSE case needs about one file descriptor per reader in the
# load tool and in the server; the script raises `ulimit -n` as far as the
# hard limit allows, and a case that wants more readers than fit runs with
# the largest multiple of 1000 that does (the table says so).
# shellcheck disable=SC2317 # functions below are invoked from traps
set -euo pipefail

usage() {
	sed -n '2,/^# shellcheck/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2
	exit 2
}

smoke=0
quick=${BENCH_QUICK:-0}
while (($#)); do
	case $1 in
	--smoke) smoke=1 quick=1 ;;
	--quick) quick=1 ;;
	-h | --help) usage ;;
	*)
		echo "bench: unknown argument $1" >&2
		usage
		;;
	esac
	shift
done
[[ $quick == 1 ]] || quick=0

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"
cd "$root"
started_at=$SECONDS
invocation="scripts/bench.sh"
((smoke)) && invocation+=" --smoke"
((quick && !smoke)) && invocation+=" --quick"

if ((smoke)); then
	targets=${BENCH_TARGETS:-streamd}
else
	targets=${BENCH_TARGETS:-streamd node-memory node-file ceiling}
fi
targets=${targets//,/ }
for t in $targets; do
	case $t in
	streamd | node-memory | node-file | ceiling) ;;
	*)
		echo "bench: unknown target $t (streamd, node-memory, node-file, ceiling)" >&2
		exit 2
		;;
	esac
done
selected=${BENCH_SCENARIOS:-}
selected=${selected//,/ }

startup_timeout=${BENCH_STARTUP_TIMEOUT:-30}
stop_grace=${BENCH_STOP_GRACE:-15}
tool_timeout=${BENCH_TIMEOUT:-5m}
hard_timeout=${BENCH_HARD_TIMEOUT:-7m}
pause=${BENCH_PAUSE:-1}
fresh=${BENCH_FRESH_SERVER:-1}
[[ $fresh == 0 ]] || fresh=1

label=bench
((smoke)) && label=bench-smoke
log() { echo "$label: $*"; }

# ---------------------------------------------------------------- binaries

if [[ -n ${STREAMD_BIN:-} ]]; then
	streamd_bin=$STREAMD_BIN
	[[ $streamd_bin == /* ]] || streamd_bin="$root/$streamd_bin"
else
	log "building bin/streamd"
	go build -o bin/streamd ./cmd/streamd
	streamd_bin="$root/bin/streamd"
fi
if [[ -n ${STREAMBENCH_BIN:-} ]]; then
	bench_bin=$STREAMBENCH_BIN
	[[ $bench_bin == /* ]] || bench_bin="$root/$bench_bin"
else
	log "building bin/streambench"
	go build -o bin/streambench ./cmd/streambench
	bench_bin="$root/bin/streambench"
fi
for b in "$streamd_bin" "$bench_bin"; do
	if [[ ! -x $b ]]; then
		echo "$label: $b is not an executable file" >&2
		exit 2
	fi
done

needs_node_reference=0
for t in $targets; do
	[[ $t == node-* ]] && needs_node_reference=1
done
if ((needs_node_reference)) && [[ ! -f $root/bench/node_modules/@durable-streams/server/package.json ]]; then
	log "installing the Node reference server (npm ci in bench/)"
	(cd "$root/bench" && npm ci --no-audit --no-fund)
fi

# ---------------------------------------------------------------- limits

# Every long-poll or SSE reader holds one connection: one descriptor in the
# load tool and one in the server, both of which inherit this limit.
ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
nofile=$(ulimit -n)
[[ $nofile == unlimited ]] && nofile=1048576
fd_headroom=1500

# fit_readers N: N, or the largest multiple of 1000 below it that leaves
# fd_headroom descriptors free under the open-files limit.
fit_readers() {
	local want=$1 fit
	fit=$(((nofile - fd_headroom) / 1000 * 1000))
	((fit < 1000)) && fit=$((nofile / 2))
	if ((want <= fit)); then echo "$want"; else echo "$fit"; fi
}

# ---------------------------------------------------------------- cases

declare -a case_ids=()
declare -A case_scenario=() case_targets=() case_title=() case_args=() case_args_node=() case_note=()

# add_case ID SCENARIO TARGETS TITLE ARGS... ; TARGETS is "all" or a list
add_case() {
	local id=$1 scenario=$2 tg=$3 title=$4
	shift 4
	[[ -z ${case_scenario[$id]:-} ]] || id+=-2
	case_note[$id]=$next_note
	next_note=""
	case_ids+=("$id")
	case_scenario[$id]=$scenario
	case_targets[$id]=$tg
	case_title[$id]=$title
	case_args[$id]="$*"
}

# readers_for N: set n to the readers of the next long-poll or SSE case, N
# shrunk to what the descriptor limit fits, with a note for that case when
# it is.
next_note=""
readers_for() {
	local want=$1
	n=$(fit_readers "$want")
	if ((n != want)); then
		next_note="$(fmt_int "$want") readers wanted; ulimit -n is $nofile here, so $(fmt_int "$n")"
	fi
}

# fmt_int 50000 -> 50,000
fmt_int() {
	local s=$1 out=""
	while ((${#s} > 3)); do
		out=",${s: -3}$out"
		s=${s:0:${#s}-3}
	done
	echo "$s$out"
}

plural() { if (($1 == 1)); then echo "$1 $2"; else echo "$1 ${2}s"; fi; }

# short_count N: 10000 -> 10k, 250 -> 250 (for case ids)
short_count() {
	if (($1 >= 1000 && $1 % 1000 == 0)); then echo "$(($1 / 1000))k"; else echo "$1"; fi
}

if ((quick)); then
	duration=${BENCH_DURATION:-1s}
	warmup=${BENCH_WARMUP:-200ms}
	read_mib=${BENCH_READ_MIB:-8}
	read_mib_node=${BENCH_READ_MIB_NODE:-$read_mib}
	read_repeat=${BENCH_READ_REPEAT:-1}
	lp_readers=${BENCH_LONGPOLL_READERS:-100}
	lp_big_readers=${BENCH_LONGPOLL_BIG_READERS:-400}
	lp_rounds=${BENCH_LONGPOLL_ROUNDS:-2}
	lp_settle=${BENCH_LONGPOLL_SETTLE:-500ms}
	lp_source_ips=${BENCH_LONGPOLL_SOURCE_IPS:-2}
	read -r -a sse_subs <<<"${BENCH_SSE_SUBSCRIBERS:-20 10}"
	sse_rate=${BENCH_SSE_RATE:-20}
	n_streams=${BENCH_STREAMS:-200}
	many_streams=${BENCH_MANY_STREAMS:-3000}
	many_args="-checkpoints 300 -append-duration 500ms -restarts 1 -verify 100 -idle-wait ${BENCH_MANY_IDLE_WAIT:-1s}"
else
	duration=${BENCH_DURATION:-10s}
	warmup=${BENCH_WARMUP:-1s}
	read_mib=${BENCH_READ_MIB:-256}
	read_mib_node=${BENCH_READ_MIB_NODE:-256}
	read_repeat=${BENCH_READ_REPEAT:-3}
	lp_readers=${BENCH_LONGPOLL_READERS:-10000}
	lp_big_readers=${BENCH_LONGPOLL_BIG_READERS:-50000}
	lp_rounds=${BENCH_LONGPOLL_ROUNDS:-5}
	lp_settle=${BENCH_LONGPOLL_SETTLE:-2s}
	lp_source_ips=${BENCH_LONGPOLL_SOURCE_IPS:-4}
	read -r -a sse_subs <<<"${BENCH_SSE_SUBSCRIBERS:-1000 200}"
	sse_rate=${BENCH_SSE_RATE:-50}
	n_streams=${BENCH_STREAMS:-10000}
	many_streams=${BENCH_MANY_STREAMS:-1000000}
	many_args="-checkpoints 1000,100000 -append-duration 5s -restarts 5 -verify 2000 -idle-wait ${BENCH_MANY_IDLE_WAIT:-70s}"
fi

define_cases() {
	local w s ws n
	if ((smoke)); then
		# One case per scenario, sized to finish in about ten seconds.
		add_case append-16x16 append all "append: 16 writers x 16 streams, 256 B bodies, $duration" \
			-writers 16 -streams 16 -bytes 256 -duration "$duration" -warmup "$warmup"
	else
		for ws in 1x1 16x16 64x100; do
			w=${ws%x*} s=${ws#*x}
			add_case "append-$ws" append all "append: $(plural "$w" writer) x $(plural "$s" stream), 256 B bodies, $duration" \
				-writers "$w" -streams "$s" -bytes 256 -duration "$duration" -warmup "$warmup"
		done
	fi
	local read_id=read-${read_mib}mib
	add_case "$read_id" read all "read: catch-up read of a $read_mib MiB stream written in 1 MiB appends, $(plural "$read_repeat" read)" \
		-mib "$read_mib" -chunk-bytes 1048576 -repeat "$read_repeat"
	if [[ $read_mib_node != "$read_mib" ]]; then
		case_args_node[$read_id]="-mib $read_mib_node -chunk-bytes 1048576 -repeat $read_repeat"
	fi
	readers_for "$lp_readers"
	add_case "longpoll-$(short_count "$n")" longpoll all "longpoll: $(fmt_int "$n") readers x $lp_rounds rounds, 256 B" \
		-readers "$n" -rounds "$lp_rounds" -bytes 256 -source-ips 1 -settle "$lp_settle"
	if ((!smoke)); then
		readers_for "$lp_big_readers"
		add_case "longpoll-$(short_count "$n")" longpoll "streamd ceiling" \
			"longpoll: $(fmt_int "$n") readers x $lp_rounds rounds, 256 B, $lp_source_ips source IPs" \
			-readers "$n" -rounds "$lp_rounds" -bytes 256 -source-ips "$lp_source_ips" -settle "$lp_settle"
	fi
	# Over HTTP/2 the readers share connections, so ulimit -n does not cap them.
	n=$lp_big_readers
	((!smoke)) || n=$lp_readers
	add_case "longpoll-$(short_count "$n")-h2c" longpoll "streamd ceiling" \
		"longpoll: $(fmt_int "$n") HTTP/2 (h2c) readers x $lp_rounds rounds, 256 B, 256 readers per connection" \
		-readers "$n" -rounds "$lp_rounds" -bytes 256 -settle "$lp_settle" -h2c
	local subs
	for subs in "${sse_subs[@]}"; do
		readers_for "$subs"
		add_case "sse-$(short_count "$n")" sse all "sse: $(fmt_int "$n") subscribers, $sse_rate msg/s of 256 B, $duration" \
			-subscribers "$n" -rate "$sse_rate" -bytes 256 -duration "$duration"
		((!smoke)) || break
	done
	add_case "streams-$(short_count "$n_streams")" streams all "streams: create $(fmt_int "$n_streams") streams, 256 B first append, 16 at a time" \
		-streams "$n_streams" -bytes 256 -concurrency 16
	local many_checks many_id
	read -r -a many_checks <<<"$many_args"
	many_id=manystreams-$(short_count "$many_streams")
	[[ $many_streams != 1000000 ]] || many_id=manystreams-1m
	add_case "$many_id" manystreams streamd \
		"manystreams: $(fmt_int "$many_streams") streams, random appends as they grow, passivation, restarts" \
		-streams "$many_streams" -bytes 256 -concurrency 64 -timeout 12m "${many_checks[@]}"
}
define_cases

case_selected() {
	local id=$1 target=$2 sel
	if [[ ${case_targets[$id]} != all && " ${case_targets[$id]} " != *" $target "* ]]; then
		return 1
	fi
	[[ -z $selected ]] && return 0
	for sel in $selected; do
		[[ $sel == "$id" || $sel == "${case_scenario[$id]}" ]] && return 0
	done
	return 1
}

# ---------------------------------------------------------------- results

stamp=$(date +%Y%m%d-%H%M%S)
results=${BENCH_RESULTS_DIR:-$root/bench/results/$stamp}
mkdir -p "$results/logs"
results=$(cd "$results" && pwd)
: >"$results/raw.jsonl"
: >"$results/results.jsonl"
report=(node "$root/bench/report.mjs")

tmp=$(mktemp -d "${TMPDIR:-/tmp}/streamd-bench.XXXXXX")
server_pid=""
server_target=""
server_stderr=""

commands="$results/commands.txt"
{
	echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ), in $root"
	env_line=""
	for name in $(env | grep -oE '^(BENCH_[A-Z_]*|STREAMD_BIN|STREAMBENCH_BIN)=.' | cut -d= -f1 | sort); do
		env_line+="$name=$(printf '%q' "${!name}") "
	done
	echo "${env_line}${invocation}"
} >"$commands"

# Print a command so that it can be pasted into a shell, and log it.
show_cmd() {
	local line
	line=$(printf '%q ' "$@")
	line=${line% }
	line=${line//"$root/"/}
	echo "$line" >>"$commands"
	echo "  \$ $line"
}

{
	echo "machine:   $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"
	echo "memory:    $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
	echo "kernel:    $(uname -sr)"
	echo "go:        $(go version 2>/dev/null | sed 's/^go version //' || echo n/a)"
	echo "node:      $(node --version 2>/dev/null || echo n/a)"
	echo "reference: @durable-streams/server $(node -p 'require(process.argv[1]).dependencies["@durable-streams/server"]' "$root/bench/package.json" 2>/dev/null || echo n/a)"
	echo "streamd:   $(git -C "$root" describe --always --dirty 2>/dev/null || echo n/a)"
	echo "ulimit -n: $nofile"
	echo "storage:   durable targets write to $(df -P "$tmp" | awk 'NR == 2 {print $1}') ($tmp)"
} >"$results/machine.txt"

# ---------------------------------------------------------------- servers

stop_server() {
	[[ -n $server_pid ]] || return 0
	stop_pid "$server_pid" "$stop_grace" "$label: $server_target"
	server_pid=""
	rm -rf "$tmp/data"
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop_server
	rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A free loopback port: bind port 0, read the assigned port, release it.
free_port() {
	node -e '
const s = require("net").createServer()
s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close() })
'
}

# start_server TARGET CASE: start it in the background, set server_pid and
# url, and wait until it answers HTTP (any status). Returns 1 if it does not.
start_server() {
	local target=$1 id=$2 port cmd=()
	port=$(free_port)
	url="http://127.0.0.1:$port"
	rm -rf "$tmp/data"
	mkdir -p "$tmp/data"
	case $target in
	streamd)
		cmd=("$streamd_bin" --addr "127.0.0.1:$port" --data-dir "$tmp/data")
		if [[ -n ${BENCH_STREAMD_ARGS:-} ]]; then
			local extra
			read -r -a extra <<<"$BENCH_STREAMD_ARGS"
			cmd+=("${extra[@]}")
		fi
		;;
	node-memory) cmd=(node "$root/bench/reference-server.mjs" --port "$port" --host 127.0.0.1) ;;
	node-file) cmd=(node "$root/bench/reference-server.mjs" --port "$port" --host 127.0.0.1 --data-dir "$tmp/data") ;;
	ceiling) cmd=("$bench_bin" ceiling -addr "127.0.0.1:$port") ;;
	esac
	server_target=$target
	server_stderr="$results/logs/$target.server.log"
	echo "== $(date +%H:%M:%S) $target for $id: $url" >>"$server_stderr"
	show_cmd "${cmd[@]}"
	"${cmd[@]}" >>"$server_stderr" 2>&1 </dev/null &
	server_pid=$!
	log "$target pid $server_pid"

	local deadline=$((SECONDS + startup_timeout)) code status
	while :; do
		if ! kill -0 "$server_pid" 2>/dev/null; then
			status=0
			wait "$server_pid" || status=$?
			server_pid=""
			echo "$label: $target exited with status $status before answering on $url" >&2
			tail -n 20 "$server_stderr" >&2 || true
			return 1
		fi
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url/v1/stream/__probe" || true)
		if [[ -n $code && $code != 000 ]]; then
			return 0
		fi
		if ((SECONDS >= deadline)); then
			echo "$label: $target did not answer on $url within ${startup_timeout}s" >&2
			stop_server
			return 1
		fi
		sleep 0.2
	done
}

# ---------------------------------------------------------------- runs

failures=0

# record ID TARGET STATUS WALL NOTE [STDOUT]: append the case's result lines.
record() {
	local id=$1 target=$2 status=$3 wall=$4 note=$5 out=${6:-/dev/null}
	local args=(record --results "$results" --case "$id" --scenario "${case_scenario[$id]}"
		--title "${case_title[$id]}" --target "$target" --exit "$status" --wall "$wall"
		--note "$note" --stdout "$out")
	if ! "${report[@]}" "${args[@]}"; then
		failures=$((failures + 1))
	fi
}

run_case() {
	local id=$1 target=$2 args=() note=${case_note[$1]:-} status t0 wall out errlog
	if [[ $target == node-* && -n ${case_args_node[$id]:-} ]]; then
		read -r -a args <<<"${case_args_node[$id]}"
		note="${note:+$note; }Node reference runs smaller: ${case_args_node[$id]}"
	else
		read -r -a args <<<"${case_args[$id]}"
	fi

	out="$tmp/out.json"
	errlog="$results/logs/$target.$id.log"
	local cmd=("$bench_bin" "${case_scenario[$id]}" -url "$url" -server-pid "$server_pid"
		-label "$target" -prefix "$id" -timeout "$tool_timeout" "${args[@]}")
	local case_hard=$hard_timeout
	if [[ ${case_scenario[$id]} == manystreams ]]; then
		# The load tool starts, restarts and stops streamd itself.
		local port
		port=$(free_port)
		url="http://127.0.0.1:$port"
		rm -rf "$tmp/data"
		cmd=("$bench_bin" manystreams -url "$url" -label "$target" -prefix "$id"
			-timeout "$tool_timeout" "${args[@]}"
			-server-cmd "$streamd_bin --addr 127.0.0.1:$port --data-dir $tmp/data ${BENCH_STREAMD_ARGS:-}")
		case_hard=15m
	fi
	log "$target $id: ${case_title[$id]}"
	show_cmd "${cmd[@]}"
	t0=$(date +%s.%N)
	status=0
	timeout --kill-after=10s "$case_hard" "${cmd[@]}" >"$out" 2>"$errlog" </dev/null || status=$?
	wall=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
	if ((status == 124 || status == 137)); then
		note="${note:+$note; }killed after $case_hard"
	fi

	if [[ ${case_scenario[$id]} != manystreams ]] && ! kill -0 "$server_pid" 2>/dev/null; then
		local sstatus=0
		wait "$server_pid" 2>/dev/null || sstatus=$?
		server_pid=""
		note="${note:+$note; }$target exited (status $sstatus) during this case"
		echo "$label: $target exited with status $sstatus during $id; last server log lines:" >&2
		tail -n 20 "$server_stderr" >&2 || true
		((status == 0)) && status=1
	fi
	if ((status != 0)); then
		echo "$label: load tool exited with status $status; last lines of $errlog:" >&2
		tail -n 15 "$errlog" >&2 || true
	fi
	record "$id" "$target" "$status" "$wall" "$note" "$out"
}

log "results in $results"
log "ulimit -n $nofile"
for target in $targets; do
	todo=()
	for id in "${case_ids[@]}"; do
		case_selected "$id" "$target" && todo+=("$id")
	done
	((${#todo[@]})) || continue
	log "== $target: ${todo[*]}"
	for i in "${!todo[@]}"; do
		id=${todo[$i]}
		((i == 0)) || sleep "$pause"
		if [[ ${case_scenario[$id]} == manystreams ]]; then
			stop_server
			run_case "$id" "$target"
			continue
		fi
		if [[ -z $server_pid ]] && ! start_server "$target" "$id"; then
			for id in "${todo[@]:i}"; do
				record "$id" "$target" 1 0 "$target did not start"
			done
			break
		fi
		run_case "$id" "$target"
		if ((fresh)); then
			stop_server
		fi
	done
	stop_server
done

# ---------------------------------------------------------------- report

elapsed=$((SECONDS - started_at))
{
	"${report[@]}" table --results "$results"
	echo
	echo "Machine:"
	echo
	sed 's/^/    /' "$results/machine.txt"
	echo
	echo "Commands, from the repository root, with the port, server PID and temp dir"
	echo "of each run as \$PORT, \$PID and \$TMP (commands.txt has them as run):"
	echo
	# shellcheck disable=SC2016 # $PORT, $PID and $TMP are literal text here
	sed -E -e 's#127\.0\.0\.1:[0-9]+#127.0.0.1:$PORT#g' -e 's#--port [0-9]+#--port $PORT#g' \
		-e 's#-server-pid [0-9]+#-server-pid $PID#g' -e "s#$tmp#\$TMP#g" "$commands" |
		awk '!seen[$0]++' | sed 's/^/    /'
	echo
	echo "Wall time: ${elapsed}s"
} >"$results/table.md"
echo
cat "$results/table.md"
echo
log "results in $results"

if ((smoke)); then
	if ((failures)); then
		log "FAILED: $failures run(s) failed or reported errors or missing messages"
		exit 1
	fi
	log "ok"
fi
