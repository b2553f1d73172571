# server.bash - what the test object stores' launchers share (sourced by tests/s3/server.sh and
# tests/azure/server.sh): free loopback ports, waiting for a started server's port, and stopping
# the processes a launcher recorded in pid files of its temp dir. What runs is theirs.
# shellcheck shell=bash

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_port PORT PIDFILE SECONDS: until PORT accepts (polled every 0.05 s); fails at once when the
# process in PIDFILE is gone, or after SECONDS.
wait_port() {
    local n=$(($3 * 20))
    for _ in $(seq 1 "$n"); do
        kill -0 "$(cat "$2")" 2>/dev/null || return 1
        if (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    return 1
}

# server_stop DIR PIDFILE...: TERM the processes of DIR's pid files, KILL what is left after
# 2.5 s, remove DIR. Nothing to do without DIR.
server_stop() {
    local dir=$1 p
    shift
    [ -n "$dir" ] && [ -d "$dir" ] || return 0
    for p in "$@"; do
        [ -f "$dir/$p" ] && kill "$(cat "$dir/$p")" 2>/dev/null || true
    done
    for p in "$@"; do
        [ -f "$dir/$p" ] || continue
        for _ in $(seq 1 50); do kill -0 "$(cat "$dir/$p")" 2>/dev/null || break; sleep 0.05; done
        kill -9 "$(cat "$dir/$p")" 2>/dev/null || true
    done
    rm -rf "$dir"
}
