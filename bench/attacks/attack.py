#!/usr/bin/env python3
"""Hostile clients of warden's plain-HTTP front (issue 12), for bench/attacks.sh.

  attack.py ATTACK --port P [options]     run ATTACK until SIGTERM/SIGINT, then print one line
                                          "ATTACK name=... key=value ..." (its own counts)
  attack.py sample --pid PID              sample /proc/PID/status every 200 ms until SIGTERM,
                                          then print "SAMPLE rss_max_kib=... hwm_kib=... samples=..."

Attacks (what each one sends is what tests/server/http_front_test.cc sends, at volume):
  big-attrs    POST /v1/check of ~900 KB, one check whose resource has 90,000 attributes, with a
               well-formed token nobody holds (unauthenticated), in a loop on --conns connections
  pipeline     --conns connections each writing pipelined GET /metrics without ever reading
  long-path    GET /v1/service-accounts/ + 8,000 x 'a', then + 100,000 x 'a', in turn, in a loop
               (admin session), on --conns connections
  yaml-alias   PUT /v1/service-accounts/{--account}/permissions, Content-Type application/yaml,
               9 levels of 9 aliases (a: &a [x,...], b: &b [*a,...], ...), --parallel at a time
               (each on a new connection, all from one thread), by a logged-in admin; after the stop signal the answers still in flight are
               awaited for up to --drain seconds (how long the server takes is part of the result)
  slowloris    --conns connections each trickling one header byte every 100-500 ms; a connection
               the server closes is counted and opened again
  bad-tokens   POST /v1/check with a random well-formed bad token (from --bad-tokens FILE), one
               check, closed loop on --conns connections
  bad-batches  the same with 100 checks per request
  idle         --conns keep-alive connections, one GET /healthz answered on each, then idle; a
               connection the server closes is counted; with --reconnect it is opened again (so
               past max_connections the server keeps evicting: a connection churn); connects
               are non-blocking and a pending one (its SYN dropped by the server's filter)
               holds its place, so the attack never waits on one
Every attack connects from --source (default 127.0.0.2), another address than the victim's.
Counts: sent (requests written), answers by status (s200=, s429=, ...), closed (connections the
server closed), connects, errors (connect/send failures), cpu_s (this process's own CPU time: it
shares the machine with the server and the victim).
Python 3 standard library only.
"""
import argparse
import collections
import heapq
import json
import os
import random
import resource
import selectors
import signal
import socket
import sys
import threading
import time

STOP = threading.Event()
LOCK = threading.Lock()
COUNTS = collections.Counter()
LATENCIES = []  # seconds, for attacks where one answer's time matters (yaml-alias)


def count(key, n=1):
    with LOCK:
        COUNTS[key] += n


SOURCE = ("127.0.0.1", 0)  # the attacker's own address (--source): not the victim's


def connect(port, timeout=None):
    s = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=SOURCE)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.settimeout(timeout)
    count("connects")
    return s


def connect_nonblocking(port):
    """A socket whose connect from SOURCE is under way (None, counted as an error, on failure)."""
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(SOURCE)
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
    except OSError:
        count("errors")
        return None
    count("connects")
    return s


class Responses:
    """Splits a byte stream into HTTP/1.1 responses (status line, headers, Content-Length body)."""

    def __init__(self):
        self.buf = b""

    def feed(self, data):
        self.buf += data
        out = []
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return out
            head = self.buf[:end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                k, _, v = line.partition(":")
                if k.strip().lower() == "content-length":
                    length = int(v.strip())
            if len(self.buf) < end + 4 + length:
                return out
            body = self.buf[end + 4:end + 4 + length]
            self.buf = self.buf[end + 4 + length:]
            try:
                status = int(head[9:12])
            except ValueError:
                status = 0
            if 100 <= status < 200:
                continue
            out.append((status, head, body))


def request(method, path, body=b"", headers=()):
    lines = [f"{method} {path} HTTP/1.1", "Host: warden"]
    lines += list(headers)
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def closed_loop(port, make_request, per_conn_timeout=30.0):
    """One connection: write a request, read its answer, again, until STOP; reconnect on close."""
    sock = None
    parser = None
    while not STOP.is_set():
        try:
            if sock is None:
                sock = connect(port, timeout=per_conn_timeout)
                parser = Responses()
            sock.sendall(make_request())
            count("sent")
            got = []
            while not got:
                data = sock.recv(262144)
                if not data:
                    raise ConnectionResetError("closed by the server")
                got = parser.feed(data)
            for status, head, _ in got:
                count(f"s{status}")
                if "connection: close" in head.lower():
                    raise ConnectionResetError("Connection: close")
        except (ConnectionError, BrokenPipeError, socket.timeout, OSError) as e:
            if isinstance(e, socket.timeout):
                count("timeouts")
            count("closed")
            if sock is not None:
                sock.close()
            sock = None
            if not STOP.is_set():
                time.sleep(0.01)
    if sock is not None:
        sock.close()


def run_threads(n, target, *args):
    threads = [threading.Thread(target=target, args=args, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    return threads


def login(port, password):
    s = connect(port, timeout=30)
    body = json.dumps({"email": "admin@localhost", "password": password}).encode()
    s.sendall(request("POST", "/v1/auth/login", body, ["Content-Type: application/json"]))
    parser = Responses()
    got = []
    while not got:
        data = s.recv(65536)
        if not data:
            raise SystemExit("login: connection closed")
        got = parser.feed(data)
    s.close()
    status, _, rbody = got[0]
    if status != 200:
        raise SystemExit(f"login: HTTP {status} {rbody[:200]!r}")
    return json.loads(rbody)["token"]


def bad_tokens(path):
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]


# ---- the attacks

def big_attrs(a):
    token = bad_tokens(a.bad_tokens)[0]
    attrs = ",".join(f'"k{i:x}":0' for i in range(90000))
    body = ('{"token":"%s","model":"company","action":"view","resource":{"id":"c1",%s}}' % (token, attrs)).encode()
    COUNTS["body_bytes"] = len(body)
    req = request("POST", "/v1/check", body, ["Content-Type: application/json"])
    return run_threads(a.conns, closed_loop, a.port, lambda: req)


def bad_token_checks(a, batch):
    tokens = bad_tokens(a.bad_tokens)
    checks = ",".join('{"model":"company","action":"view","resource":{"id":"c%d"}}' % i for i in range(batch))

    def make():
        body = ('{"token":"%s","checks":[%s],"context":{"request_id":"attack"}}' % (random.choice(tokens), checks)).encode()
        return request("POST", "/v1/check", body, ["Content-Type: application/json"])
    return run_threads(a.conns, closed_loop, a.port, make)


def long_path(a):
    session = login(a.port, a.password)
    auth = [f"Authorization: Bearer {session}"]
    reqs = [request("GET", "/v1/service-accounts/" + "a" * n, b"", auth) for n in (8000, 100000)]
    turn = [0]

    def make():
        turn[0] += 1
        return reqs[turn[0] % 2]
    return run_threads(a.conns, closed_loop, a.port, make)


def alias_yaml(levels=9, width=9):
    names = "abcdefghijklmnopqrstuvwxyz"
    lines = ["a: &a [" + ",".join(["x"] * width) + "]"]
    for k in range(1, levels):
        lines.append(f"{names[k]}: &{names[k]} [" + ",".join([f"*{names[k - 1]}"] * width) + "]")
    return ("\n".join(lines) + "\n").encode()


def yaml_alias(a):
    """--parallel PUTs in flight, each on a new connection, from one thread: 16 runnable Python
    threads took most of the two CPUs from the victim's wrk (the server's loop was idle)."""
    session = login(a.port, a.password)
    body = alias_yaml(a.levels, a.width)
    COUNTS["body_bytes"] = len(body)
    req = request("PUT", f"/v1/service-accounts/{a.account}/permissions", body,
                  [f"Authorization: Bearer {session}", "Content-Type: application/yaml"])
    sel = selectors.DefaultSelector()
    flights = {}  # fd -> [socket, Responses, start time, bytes of req sent]

    def open_one():
        s = connect_nonblocking(a.port)
        if s is None:
            return False
        flights[s.fileno()] = [s, Responses(), time.monotonic(), 0]
        sel.register(s, selectors.EVENT_WRITE)
        return True

    def finish(fd):
        s = flights.pop(fd)[0]
        sel.unregister(s)
        s.close()

    def run():
        deadline = None
        while flights or not STOP.is_set():
            while not STOP.is_set() and len(flights) < a.parallel:  # keep --parallel in flight
                if not open_one():
                    time.sleep(0.1)
                    break
            if STOP.is_set() and deadline is None:
                deadline = time.monotonic() + a.drain
            if deadline is not None and time.monotonic() > deadline:
                count("unanswered", len(flights))
                for fd in list(flights):
                    finish(fd)
                break
            for key, events in sel.select(0.5):
                fd = key.fd
                if fd not in flights:
                    continue
                f = flights[fd]
                try:
                    if events & selectors.EVENT_WRITE:
                        f[3] += f[0].send(req[f[3]:])
                        if f[3] == len(req):
                            count("sent")
                            sel.modify(f[0], selectors.EVENT_READ)
                        continue
                    data = f[0].recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    count("errors")
                    data = None
                if data == b"":
                    count("closed")
                got = f[1].feed(data) if data else []
                if data and not got:
                    continue
                for status, _, rbody in got:
                    count(f"s{status}")
                    with LOCK:
                        LATENCIES.append(time.monotonic() - f[2])
                        COUNTS.setdefault("first_answer", rbody[:160].decode("utf-8", "replace"))
                finish(fd)
    return run_threads(1, run)


def pipeline(a):
    burst = request("GET", "/metrics") * 200

    def greedy():
        sock = None
        while not STOP.is_set():
            try:
                if sock is None:
                    sock = connect(a.port)
                    sock.setblocking(False)
                try:
                    n = sock.send(burst)
                    count("sent_bytes", n)
                except BlockingIOError:
                    time.sleep(0.05)  # the server stopped reading us: wait, never read
            except OSError:
                count("closed")
                if sock is not None:
                    sock.close()
                sock = None
                time.sleep(0.05)
        if sock is not None:
            sock.close()
    threads = run_threads(a.conns, greedy)
    COUNTS["request_bytes"] = len(request("GET", "/metrics"))
    return threads


def slowloris(a):
    text = b"GET /healthz HTTP/1.1\r\nHost: warden\r\nX-Slow: " + b"a" * 100000
    sel = selectors.DefaultSelector()
    heap = []  # (next send time, fd)
    conns = {}  # fd -> [socket, bytes sent]

    def open_one():
        s = connect_nonblocking(a.port)
        if s is None:
            return
        conns[s.fileno()] = [s, 0, Responses()]
        sel.register(s, selectors.EVENT_READ)
        heapq.heappush(heap, (time.monotonic() + random.uniform(0.1, 0.5), s.fileno()))

    def close_one(fd):
        s = conns.pop(fd)[0]
        sel.unregister(s)
        s.close()
        count("closed")

    def run():
        for _ in range(a.conns):
            open_one()
        while not STOP.is_set():
            timeout = max(0.0, min(0.05, heap[0][0] - time.monotonic())) if heap else 0.05
            for key, _ in sel.select(timeout):
                fd = key.fd
                if fd not in conns:
                    continue
                try:
                    data = conns[fd][0].recv(65536)
                except OSError:
                    data = b""
                for status, _, _ in conns[fd][2].feed(data) if data else []:
                    count(f"s{status}")
                if not data:
                    close_one(fd)
                    open_one()
            now = time.monotonic()
            while heap and heap[0][0] <= now:
                _, fd = heapq.heappop(heap)
                if fd not in conns:
                    continue
                c = conns[fd]
                try:
                    if c[0].send(text[c[1]:c[1] + 1]) == 1:
                        c[1] += 1
                        count("bytes_sent")
                except BlockingIOError:
                    pass
                except OSError:
                    close_one(fd)
                    open_one()
                    continue
                heapq.heappush(heap, (now + random.uniform(0.1, 0.5), fd))
        COUNTS["open_at_stop"] = len(conns)
        for fd in list(conns):
            conns.pop(fd)[0].close()
    return run_threads(1, run)


def idle(a):
    hello = request("GET", "/healthz")
    sel = selectors.DefaultSelector()
    conns = {}  # fd -> [socket, Responses, established]

    # Connects are non-blocking: a server that drops the SYNs of an address at its cap leaves
    # them pending in the kernel's SYN retransmission (1 s, 3 s, ...) for up to ~2 min, and a
    # blocking connect would stall the whole attack on the first one. A pending connect holds
    # its place in --conns like an open connection ("connects" counts attempts, "established"
    # the handshakes that completed, "connect_failed" the refused or timed-out ones).
    def open_one():
        s = connect_nonblocking(a.port)
        if s is None:
            return False
        conns[s.fileno()] = [s, Responses(), False]
        sel.register(s, selectors.EVENT_WRITE)
        return True

    def established(fd, c):
        c[2] = True
        if c[0].getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
            count("connect_failed")
            return False
        count("established")
        try:
            c[0].send(hello)
        except OSError:
            return False
        count("sent")
        sel.modify(c[0], selectors.EVENT_READ)
        return True

    def run():
        opened = 0
        while opened < a.conns and not STOP.is_set():
            if open_one():
                opened += 1
            if opened % 200 == 0:  # read the answers now and then while opening
                for key, _ in sel.select(0):
                    handle(key.fd)
        COUNTS["opened_initially"] = opened
        COUNTS["open_after_ramp"] = len(conns)
        print("ready", file=sys.stderr, flush=True)
        while not STOP.is_set():
            short = a.reconnect and len(conns) < a.conns
            for key, _ in sel.select(0 if short else 0.1):
                handle(key.fd)
            # --reconnect: back to --conns at once, also after a connect the server refused
            # (a reset connection was not reopened, and the churn died down by itself).
            for _ in range(min(200, a.conns - len(conns)) if a.reconnect else 0):
                if STOP.is_set() or not open_one():
                    break
        COUNTS["pending_at_stop"] = sum(1 for c in conns.values() if not c[2])

    def handle(fd):
        if fd not in conns:
            return
        c = conns[fd]
        if not c[2]:
            if not established(fd, c):
                drop(fd)
            return
        try:
            data = c[0].recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            for status, _, _ in c[1].feed(data):
                count(f"s{status}")
            return
        drop(fd)
        count("closed")

    def drop(fd):
        sel.unregister(conns[fd][0])
        conns.pop(fd)[0].close()

    threads = run_threads(1, run)
    return threads


def sample(a):
    rss_max = hwm = n = 0
    killed = 0
    path = f"/proc/{a.pid}/status"
    while not STOP.is_set():
        try:
            with open(path) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss_max = max(rss_max, int(line.split()[1]))
                        if a.kill_above_kib and rss_max > a.kill_above_kib and not killed:
                            os.kill(a.pid, signal.SIGKILL)  # protect the shared machine
                            killed = 1
                    elif line.startswith("VmHWM:"):
                        hwm = int(line.split()[1])
            n += 1
        except OSError:
            break
        STOP.wait(0.2)
    print(f"SAMPLE rss_max_kib={rss_max} hwm_kib={hwm} samples={n} killed={killed}", flush=True)


ATTACKS = {
    "big-attrs": big_attrs,
    "pipeline": pipeline,
    "long-path": long_path,
    "yaml-alias": yaml_alias,
    "slowloris": slowloris,
    "bad-tokens": lambda a: bad_token_checks(a, 1),
    "bad-batches": lambda a: bad_token_checks(a, 100),
    "idle": idle,
}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("attack", choices=sorted(ATTACKS) + ["sample"])
    p.add_argument("--port", type=int)
    p.add_argument("--pid", type=int)
    p.add_argument("--kill-above-kib", type=int, default=0)
    p.add_argument("--conns", type=int, default=1)
    p.add_argument("--parallel", type=int, default=16)
    p.add_argument("--levels", type=int, default=9)
    p.add_argument("--width", type=int, default=9)
    p.add_argument("--drain", type=float, default=120.0)
    p.add_argument("--bad-tokens")
    p.add_argument("--password")
    p.add_argument("--account", default="bench-00001")
    p.add_argument("--reconnect", action="store_true", help="idle: open a new connection for each one closed")
    p.add_argument("--source", default="127.0.0.2",
                   help="the address the attacker connects from (all of 127/8 is loopback on Linux); "
                        "the victim is 127.0.0.1, so per-address bounds can tell the two apart")
    a = p.parse_args()
    global SOURCE
    SOURCE = (a.source, 0)
    signal.signal(signal.SIGTERM, lambda *_: STOP.set())
    signal.signal(signal.SIGINT, lambda *_: STOP.set())
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    if a.attack == "sample":
        sample(a)
        return
    t0 = time.monotonic()
    threads = ATTACKS[a.attack](a)
    print(f"started {a.attack}", file=sys.stderr, flush=True)
    if a.attack != "idle":
        print("ready", file=sys.stderr, flush=True)
    while not STOP.is_set():
        STOP.wait(0.2)
    stop_at = time.monotonic()
    for t in threads:
        t.join(a.drain + 5 if a.attack == "yaml-alias" else 5)
    ru = resource.getrusage(resource.RUSAGE_SELF)
    with LOCK:
        fields = {k: v for k, v in COUNTS.items() if k != "first_answer"}
        if LATENCIES:
            fields["answer_s_min"] = f"{min(LATENCIES):.2f}"
            fields["answer_s_max"] = f"{max(LATENCIES):.2f}"
        fields["ran_s"] = f"{stop_at - t0:.1f}"
        fields["drain_s"] = f"{time.monotonic() - stop_at:.1f}"
        fields["cpu_s"] = f"{ru.ru_utime + ru.ru_stime:.1f}"
        line = " ".join(f"{k}={v}" for k, v in sorted(fields.items()))
        first = COUNTS.get("first_answer")
    print(f"ATTACK name={a.attack} {line}", flush=True)
    if first:
        print(f"ANSWER {a.attack} {first!r}", flush=True)


if __name__ == "__main__":
    main()
