#!/usr/bin/env python3
"""Scale: globaldns with 1,000, 10,000 and 100,000 services (IPv4 and IPv6
VIPs). For each size, from an empty state directory:

- cold start: from exec to the first NOERROR answer for a registry host;
- resident memory (VmRSS) once serving, and per host;
- change-to-answer: a new service is added to the registry file (written
  aside and renamed over it, as editors and ConfigMap updates do) and the
  time is taken until the new host answers;
- warm start: the same, restarting on the state directory just written.

Usage: scale.py BINARY [SIZE[:FORMAT]...]
       (default: 1000 10000 100000 100000:json; FORMAT is yaml or json)

Every figure is wall time on a shared machine: run it twice before trusting
a digit. Queries go to 127.0.0.1 only.
"""
import os
import random
import socket
import struct
import subprocess
import sys
import tempfile
import time

CLUSTERS = ["east", "west", "north"]


def registry_text(n, extra=None, fmt="yaml"):
    if fmt == "json":
        return registry_json(n, extra)
    lines = ["clusters:"]
    for i, c in enumerate(CLUSTERS):
        lines.append(f"  - name: {c}\n    gateways: [{{address: 192.0.2.{10 + i}}}]")
    lines.append("services:")
    names = [(f"svc-{i}", f"team-{i % 100}") for i in range(n)]
    if extra:
        names.append(extra)
    for i, (name, ns) in enumerate(names):
        lines.append(
            f"  - {{name: {name}, namespace: {ns}, exportedFrom: [{CLUSTERS[i % 3]}], "
            f"ports: [{{name: http, number: 8080, protocol: HTTP}}]}}"
        )
    return "\n".join(lines) + "\n"


def registry_json(n, extra=None):
    import json
    names = [(f"svc-{i}", f"team-{i % 100}") for i in range(n)]
    if extra:
        names.append(extra)
    return json.dumps({
        "clusters": [{"name": c, "gateways": [{"address": f"192.0.2.{10 + i}"}]}
                     for i, c in enumerate(CLUSTERS)],
        "services": [{"name": name, "namespace": ns, "exportedFrom": [CLUSTERS[i % 3]],
                      "ports": [{"name": "http", "number": 8080, "protocol": "HTTP"}]}
                     for i, (name, ns) in enumerate(names)],
    })


def write_atomically(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def query(name, qtype=1):
    qid = random.randrange(1 << 16)
    packet = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        packet += bytes([len(label)]) + label.encode()
    return qid, packet + b"\x00" + struct.pack(">HH", qtype, 1)


def rcode_and_answers(sock, port, name, qtype=1):
    """(rcode, answer count), or None when nothing came back in time."""
    qid, packet = query(name, qtype)
    sock.sendto(packet, ("127.0.0.1", port))
    try:
        while True:
            data = sock.recv(2048)
            if struct.unpack(">H", data[:2])[0] == qid:
                return data[3] & 0x0F, struct.unpack(">H", data[6:8])[0]
    except socket.timeout:
        return None


def wait_answer(sock, port, name, deadline_s=120):
    """Seconds until `name` gets NOERROR with an answer."""
    start = time.monotonic()
    while time.monotonic() - start < deadline_s:
        if rcode_and_answers(sock, port, name) == (0, 1):
            return time.monotonic() - start
        time.sleep(0.001)
    raise SystemExit(f"{name} did not answer within {deadline_s} s")


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def serve(binary, registry, state, port):
    return subprocess.Popen(
        [binary, "serve", "--registry", registry, "--listen", f"127.0.0.1:{port}",
         "--state-dir", state, "--vip-range-v6", "fd00:6c6f:6261:6c00::/64",
         "--reload-interval", "50ms"],
        stderr=subprocess.DEVNULL,
    )


def measure(binary, n, fmt, work):
    registry = os.path.join(work, f"registry-{n}.{fmt}")
    state = os.path.join(work, f"state-{n}-{fmt}")
    write_atomically(registry, registry_text(n, fmt=fmt))
    port = free_port()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(0.05)
    probe = f"svc-{n - 1}.team-{(n - 1) % 100}.global"

    start = time.monotonic()
    proc = serve(binary, registry, state, port)
    try:
        wait_answer(sock, port, probe)
        cold = time.monotonic() - start
        assert rcode_and_answers(sock, port, probe, 28) == (0, 1), "AAAA VIP"
        time.sleep(0.5)
        rss = rss_bytes(proc.pid)

        changes = []
        for k in range(3):
            name = ("added", f"change-{k}")
            write_atomically(registry, registry_text(n, name, fmt))
            changes.append(wait_answer(sock, port, f"added.change-{k}.global"))
        change = sorted(changes)[1]
    finally:
        proc.terminate()
        proc.wait()

    start = time.monotonic()
    proc = serve(binary, registry, state, port)
    try:
        wait_answer(sock, port, probe)
        warm = time.monotonic() - start
    finally:
        proc.terminate()
        proc.wait()
    hosts = n + 1
    return cold, warm, rss, rss / hosts, change


def main():
    binary = sys.argv[1]
    sizes = sys.argv[2:] or ["1000", "10000", "100000", "100000:json"]
    print(f"{'services':>9} {'format':>6} {'cold start ms':>14} {'warm start ms':>14} {'RSS MiB':>8} "
          f"{'bytes/host':>11} {'change-to-answer ms':>20}")
    with tempfile.TemporaryDirectory() as work:
        for size in sizes:
            n, _, fmt = size.partition(":")
            n, fmt = int(n), fmt or "yaml"
            cold, warm, rss, per_host, change = measure(binary, n, fmt, work)
            print(f"{n:>9} {fmt:>6} {cold * 1000:>14.0f} {warm * 1000:>14.0f} {rss / 2**20:>8.1f} "
                  f"{per_host:>11.0f} {change * 1000:>20.0f}", flush=True)


if __name__ == "__main__":
    main()
