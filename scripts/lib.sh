# Shared helpers for the scripts in this folder; source it, don't run it.

# stop_pid PID GRACE_SECONDS NAME: ask the process to stop (SIGTERM), wait up
# to GRACE_SECONDS, then SIGKILL it, and reap it. NAME is for the message.
stop_pid() {
	local pid=$1 grace=$2 name=$3 waited=0
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		while kill -0 "$pid" 2>/dev/null && ((waited < grace * 10)); do
			sleep 0.1
			waited=$((waited + 1))
		done
		if kill -0 "$pid" 2>/dev/null; then
			echo "$name (pid $pid) still running after ${grace}s, sending SIGKILL" >&2
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	wait "$pid" 2>/dev/null || true
}
