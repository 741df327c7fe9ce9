#!/usr/bin/env bash
# containerd-daemon.sh start|stop|restart DIR — run one containerd for a gate.
#
# DIR/daemon.env (written by containerd-gate.sh) names CONTAINERD_BIN, CONTAINERD_CONFIG,
# CONTAINERD_LOG, CONTAINERD_SOCKET, CONTAINERD_ENDPOINT, CRICTL_BIN, READY_TIMEOUT and
# NO_PROXY_HOSTS. The daemon's pid is kept in DIR/containerd.pid; its output is appended to
# CONTAINERD_LOG. Every proxy variable points at a dead loopback port and NO_PROXY covers only
# loopback and the fixture name, so the daemon cannot reach anything outside 127.0.0.0/8.
#
#   start    start the daemon and wait (bounded by READY_TIMEOUT) until CRI answers
#   stop     SIGTERM, wait up to 10s, then SIGKILL
#   restart  stop + start (the suite's restart=CMD feature)
set -euo pipefail

[[ $# == 2 ]] || { echo "usage: $0 start|stop|restart DIR" >&2; exit 2; }
action=$1
dir=$2
# shellcheck source=/dev/null
source "$dir/daemon.env"
pidfile=$dir/containerd.pid

# seconds_since NANOS → seconds elapsed since the date +%s%N value NANOS, with 3 decimals (no bc).
seconds_since() {
	local ms=$((($(date +%s%N) - $1) / 1000000))
	printf '%d.%03d\n' $((ms / 1000)) $((ms % 1000))
}

crictl_version() {
	"$CRICTL_BIN" --config /dev/null --runtime-endpoint "$CONTAINERD_ENDPOINT" --timeout 5s version >/dev/null 2>&1
}

running_pid() {
	local pid
	[[ -f $pidfile ]] || return 1
	pid=$(<"$pidfile")
	[[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

stop() {
	local pid
	pid=$(running_pid) || { rm -f "$pidfile"; return 0; }
	kill -TERM "$pid"
	for _ in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "containerd-daemon: pid $pid did not stop in 10s; killing it" >&2
		kill -KILL "$pid"
		for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	fi
	rm -f "$pidfile"
}

start() {
	if running_pid >/dev/null; then
		echo "containerd-daemon: already running (pid $(<"$pidfile"))" >&2
		return 1
	fi
	local proxy=http://127.0.0.1:9 t0 deadline pid
	t0=$(date +%s%N)
	# setsid: the daemon outlives the shell that started it (restart runs under the suite).
	env HTTP_PROXY=$proxy HTTPS_PROXY=$proxy http_proxy=$proxy https_proxy=$proxy \
		NO_PROXY="$NO_PROXY_HOSTS" no_proxy="$NO_PROXY_HOSTS" \
		setsid "$CONTAINERD_BIN" --config "$CONTAINERD_CONFIG" >>"$CONTAINERD_LOG" 2>&1 </dev/null &
	pid=$!
	echo "$pid" >"$pidfile"
	deadline=$(($(date +%s) + READY_TIMEOUT))
	until [[ -S $CONTAINERD_SOCKET ]] && crictl_version; do
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "containerd-daemon: containerd exited during start-up; last lines of $CONTAINERD_LOG:" >&2
			tail -n 40 "$CONTAINERD_LOG" >&2
			rm -f "$pidfile"
			return 1
		fi
		if (($(date +%s) >= deadline)); then
			echo "containerd-daemon: CRI socket $CONTAINERD_SOCKET not ready after ${READY_TIMEOUT}s; last lines of $CONTAINERD_LOG:" >&2
			tail -n 40 "$CONTAINERD_LOG" >&2
			stop
			return 1
		fi
		sleep 0.1
	done
	seconds_since "$t0" >"$dir/ready-seconds"
}

case $action in
start) start ;;
stop) stop ;;
restart) stop && start ;;
*) echo "usage: $0 start|stop|restart DIR" >&2; exit 2 ;;
esac
