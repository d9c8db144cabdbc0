#!/usr/bin/env python3
"""http-hostile.py: hostile HTTP clients against one port on 127.0.0.1.

Used by tests/integration/t29_http_hostile.sh against the bridge's
bridge.http_listen.  Standard library only.  All at once, for a bounded
time:

  slow      a valid GET /metrics from a socket with a tiny receive buffer
            that then reads one byte a second (--slow-seconds at most);
  headers   a GET /metrics whose header lines add up to --header-bytes
            (1 MiB), far past the server's 32 KiB per connection;
  garbage   --garbage connections that each send 64 KiB of random bytes
            (a fixed seed: every run sends the same) that are not HTTP;
  idle      --idle TCP connections (200) that never send a byte, held open
            for --hold seconds, then closed.

The slow, headers and garbage clients connect first, so that the server
takes them before the idle ones fill its connection limit.  Every socket
operation has a timeout, and the whole run ends after --deadline seconds
whatever happens: what has not finished is reported "timeout".

Prints one line per client kind, "KIND key=value ...", then "done".
Exit status 0 (the outcomes are for the caller to judge), 2 on a usage
error.
"""

import argparse
import random
import select
import socket
import sys
import threading
import time

HOST = "127.0.0.1"
GARBAGE_BYTES = 64 * 1024

results = {}
results_lock = threading.Lock()


def report(kind, **fields):
    with results_lock:
        results[kind] = fields


def status_of(data):
    """The status code of a response's first line, or None."""
    if not data.startswith(b"HTTP/"):
        return None
    parts = data.split(b"\r\n", 1)[0].split()
    if len(parts) >= 2 and parts[1].isdigit():
        return int(parts[1])
    return None


def read_answer(sock, until):
    """Reads until the server closes or `until` (monotonic) passes.
    Returns (bytes read, how it ended: closed | reset | timeout)."""
    data = b""
    while True:
        left = until - time.monotonic()
        if left <= 0:
            return data, "timeout"
        sock.settimeout(min(left, 1.0))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return data, "reset"
        except OSError:
            return data, "reset"
        if not chunk:
            return data, "closed"
        data += chunk
        if len(data) > 1 << 20:
            return data, "open"


def connect(timeout, rcvbuf=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout)
    s.connect((HOST, ARGS.port))
    return s


def outcome(data, ended):
    code = status_of(data)
    return str(code) if code is not None else ended


def slow_client(ready):
    """A valid request, then one byte a second."""
    got = 0
    ended = "timeout"
    first = b""
    try:
        s = connect(5, rcvbuf=1024)
    except OSError as e:
        ready.set()
        report("slow", result="connect-failed", error=type(e).__name__)
        return
    ready.set()
    try:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\n\r\n")
        until = time.monotonic() + ARGS.slow_seconds
        while time.monotonic() < until:
            s.settimeout(1.0)
            try:
                b = s.recv(1)
            except socket.timeout:
                continue
            if not b:
                ended = "closed"
                break
            if len(first) < 64:
                first += b
            got += 1
            time.sleep(1.0)
    except (ConnectionResetError, BrokenPipeError, OSError):
        ended = "reset"
    finally:
        s.close()
    code = status_of(first)
    report("slow", result="%s-then-%s" % (code if code is not None else "no-status", ended),
           bytes_read=got)


def headers_client(ready):
    """One request with --header-bytes of header lines."""
    try:
        s = connect(5)
    except OSError as e:
        ready.set()
        report("headers", result="connect-failed", error=type(e).__name__)
        return
    ready.set()
    until = time.monotonic() + ARGS.deadline - 2
    sent = 0
    ended = None
    try:
        s.settimeout(max(1.0, until - time.monotonic()))
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\n")
        line_no = 0
        while sent < ARGS.header_bytes:
            line = b"X-Fill-%06d: %s\r\n" % (line_no, b"a" * 1000)
            s.sendall(line)
            sent += len(line)
            line_no += 1
        s.sendall(b"\r\n")
    except socket.timeout:
        ended = "timeout"
    except (ConnectionResetError, BrokenPipeError, OSError):
        ended = "reset"
    # Whatever happened to the sending, the server may have answered.
    data, how = read_answer(s, min(until, time.monotonic() + 15))
    s.close()
    report("headers", result=outcome(data, ended or how), header_bytes_sent=sent)


def garbage_client(i, ready):
    rng = random.Random(29000 + i)
    payload = bytes(rng.getrandbits(8) for _ in range(GARBAGE_BYTES))
    try:
        s = connect(5)
    except OSError as e:
        ready.set()
        report("garbage%d" % i, result="connect-failed", error=type(e).__name__)
        return
    ready.set()
    until = time.monotonic() + ARGS.deadline - 2
    ended = None
    try:
        s.settimeout(max(1.0, until - time.monotonic()))
        s.sendall(payload)
    except socket.timeout:
        ended = "timeout"
    except (ConnectionResetError, BrokenPipeError, OSError):
        ended = "reset"
    data, how = read_answer(s, min(until, time.monotonic() + 15))
    s.close()
    report("garbage%d" % i, result=outcome(data, ended or how))


def idle_clients():
    """Connects --idle sockets at once, without blocking: the server's
    listen backlog is small, so past it the kernel keeps retrying the SYN
    and a blocking connect would wait for each in turn."""
    socks = []
    for _ in range(ARGS.idle):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect_ex((HOST, ARGS.port))
        socks.append(s)
    until = time.monotonic() + ARGS.hold
    # Connected: writable with no error.  Checked until the hold ends.
    connected, failed, waiting = set(), set(), set(range(len(socks)))
    while waiting and time.monotonic() < until:
        _r, w, _x = select.select([], [socks[i] for i in waiting], [],
                                  max(0.0, min(0.5, until - time.monotonic())))
        for s in w:
            i = socks.index(s)
            waiting.discard(i)
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                connected.add(i)
            else:
                failed.add(i)
    while time.monotonic() < until:
        time.sleep(0.2)
    # How many of the connected the server closed meanwhile (its idle
    # timeout).
    closed = 0
    for i in connected:
        try:
            if socks[i].recv(1) == b"":
                closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
    for s in socks:
        s.close()
    report("idle", result="done", connected=len(connected), never_connected=len(waiting),
           refused=len(failed), closed_by_server=closed)


def main():
    global ARGS
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--idle", type=int, default=200)
    p.add_argument("--hold", type=float, default=12)
    p.add_argument("--header-bytes", type=int, default=1 << 20)
    p.add_argument("--garbage", type=int, default=3)
    p.add_argument("--slow-seconds", type=float, default=15)
    p.add_argument("--deadline", type=float, default=40)
    ARGS = p.parse_args()
    if not 0 < ARGS.port < 65536 or ARGS.deadline < ARGS.hold + 5 or \
            ARGS.deadline < ARGS.slow_seconds + 5 or ARGS.idle > 1000:
        p.error("bad arguments")

    start = time.monotonic()
    threads = []
    first = [("slow", slow_client, ()), ("headers", headers_client, ())]
    first += [("garbage%d" % i, garbage_client, (i,)) for i in range(ARGS.garbage)]
    for _kind, fn, args in first:
        ready = threading.Event()
        t = threading.Thread(target=fn, args=args + (ready,), daemon=True)
        t.start()
        threads.append(t)
        ready.wait(6)
    t = threading.Thread(target=idle_clients, daemon=True)
    t.start()
    threads.append(t)

    for t in threads:
        t.join(max(0.0, start + ARGS.deadline - time.monotonic()))
    kinds = [k for k, _f, _a in first] + ["idle"]
    for k in kinds:
        with results_lock:
            r = results.get(k, {"result": "timeout"})
        print(k, " ".join("%s=%s" % kv for kv in r.items()), flush=True)
    print("done in %.1f s" % (time.monotonic() - start), flush=True)
    # Daemon threads still stuck, if any, end with the process.
    return 0


if __name__ == "__main__":
    sys.exit(main())
