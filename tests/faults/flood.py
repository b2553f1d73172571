#!/usr/bin/env python3
# flood.py - the hostile clients of tests/faults/flood.sh against one agent port: N idle TCP
# connections held open, a slowloris (headers one byte per second), and M malformed requests
# (each on its own connection, 100 at a time). Prints one JSON object with what happened:
# how many idle connections were made and how many the server had closed at the end, when each
# slowloris connection was cut, and per malformed request whether it got an HTTP status, was
# closed without one, or hung (no answer within 5 s).
# usage: flood.py PORT IDLE MALFORMED SECONDS
import errno, json, os, random, resource, select, socket, sys, time

port, n_idle, n_bad, seconds = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
addr = ("127.0.0.1", port)
t0 = time.monotonic()
out = {}

# ---- idle connections: non-blocking connects, then wait until each is established ------------
idle, failed_connect = [], 0
for _ in range(n_idle):
    s = socket.socket()
    s.setblocking(False)
    try:
        s.connect(addr)
    except BlockingIOError:
        pass
    except OSError:
        failed_connect += 1
        s.close()
        continue
    idle.append(s)
deadline = time.monotonic() + 30
# select() stops at fd 1024: poll.
pending = {s.fileno(): s for s in idle}
poller = select.poll()
for fd in pending:
    poller.register(fd, select.POLLOUT)
while pending and time.monotonic() < deadline:
    for fd, _ in poller.poll(1000):
        s = pending.pop(fd, None)
        poller.unregister(fd)
        if s is not None and s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
            failed_connect += 1
out["idle_open"] = len(idle) - len(pending) - failed_connect
out["idle_failed"] = failed_connect + len(pending)
out["idle_open_s"] = round(time.monotonic() - t0, 2)
open(os.environ.get("FLOOD_MARK", "/dev/null"), "w").write("idle\n")

# ---- slowloris: 20 connections, one header byte per second ------------------------------------
slow = []
for _ in range(20):
    s = socket.create_connection(addr, timeout=5)
    s.setblocking(False)
    s.send(b"GET /readyz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    slow.append([s, None])
t_slow = time.monotonic()

def slow_tick():
    for e in slow:
        if e[1] is not None:
            continue
        try:
            if e[0].recv(4096) == b"":
                e[1] = time.monotonic() - t_slow
                continue
        except BlockingIOError:
            pass
        except OSError:
            e[1] = time.monotonic() - t_slow
            continue
        try:
            e[0].send(b"a")
        except OSError:
            e[1] = time.monotonic() - t_slow

# ---- malformed requests ----------------------------------------------------------------------
rnd = random.Random(7)
payloads = [
    b"GARBAGE\r\n\r\n",
    b"GET / HTTP/9.9\r\n\r\n",
    b"GET /readyz HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    b"GET /readyz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100000 + b"\r\n\r\n",
    b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /readyz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"GET /readyz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"GET /readyz HTTP/1.1\r\nNoColonHere\r\n\r\n",
    b"GET /readyz HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
    b"\x00" * 1000,
    b"\x16\x03\x01\x02\x00" + b"\x01" * 512,  # a TLS ClientHello on the plain port
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x04\x08\x00\x00\x00\x00\x00" * 3 + b"\xff" * 64,
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\xff\xff\x01\x05\x00\x00\x00\x01" + b"\x00" * 200,
    b"GET /readyz HTTP/1.1\r\n" + b"X: y\r\n" * 2000 + b"\r\n",
]
results = {"status": 0, "closed": 0, "hung": 0, "codes": {}}

def run_batch(batch):
    conns = []
    for p in batch:
        try:
            s = socket.create_connection(addr, timeout=5)
            s.setblocking(False)
            try:
                s.send(p)
            except OSError:
                pass
            conns.append([s, b"", time.monotonic()])
        except OSError:
            results["closed"] += 1
    live = list(conns)
    while live:
        slow_tick()
        poller = select.poll()
        for c in live:
            poller.register(c[0].fileno(), select.POLLIN)
        r = {fd for fd, _ in poller.poll(200)}
        now = time.monotonic()
        for c in list(live):
            done = False
            if c[0].fileno() in r:
                try:
                    d = c[0].recv(65536)
                    c[1] += d
                    done = d == b"" or b"\r\n\r\n" in c[1] or c[1][:3] == b"\x00\x00\x08"
                    if c[1][:9].find(b"\x07") == 3:  # HTTP/2 GOAWAY frame
                        done = True
                except BlockingIOError:
                    pass
                except OSError:
                    done = True
            if done or now - c[2] > 5:
                live.remove(c)
                c[0].close()
                if c[1].startswith(b"HTTP/1."):
                    code = c[1][9:12].decode(errors="replace")
                    results["status"] += 1
                    results["codes"][code] = results["codes"].get(code, 0) + 1
                elif done:
                    results["closed"] += 1
                else:
                    results["hung"] += 1

todo = [payloads[i % len(payloads)] if i < len(payloads) * 10 else
        bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 2048))) for i in range(n_bad)]
for i in range(0, len(todo), 100):
    run_batch(todo[i:i + 100])
out["malformed"] = results
out["malformed_done_s"] = round(time.monotonic() - t0, 2)

# ---- hold the idle connections for the rest of the time, driving the slowloris -----------------
while time.monotonic() - t0 < seconds:
    slow_tick()
    time.sleep(1)
slow_tick()
out["slowloris_cut_s"] = sorted(round(e[1], 1) for e in slow if e[1] is not None)
out["slowloris_open"] = sum(1 for e in slow if e[1] is None)
closed = 0
for s in idle:
    try:
        if s.recv(1) == b"":
            closed += 1
    except BlockingIOError:
        pass
    except OSError:
        closed += 1
out["idle_closed_by_server"] = closed
out["total_s"] = round(time.monotonic() - t0, 2)
print(json.dumps(out))
