#!/usr/bin/env python3
"""Scale: globaldns with 1,000 to 1,000,000 services (IPv4 and IPv6 VIPs),
the registry in JSON and in YAML. For each size and format, from an empty
state directory:

- cold start: from exec to the first NOERROR answer for a registry host;
- resident memory (VmRSS) once serving, and per host;
- change-to-answer: a service is added to the registry file (written aside
  and renamed over it, as editors and ConfigMap updates do) and the time is
  taken until the new host answers; the median of CHANGES changes, each
  adding one more service. It includes the file watcher's own wait: a
  change is read once the file is seen unchanged on a second poll, 50 to
  100 ms after the write with --reload-interval 50ms;
- server work: for the same changes, what the server's own log says it
  spent from reading the file to publishing (parse and validate, reconcile,
  journal, patch or build), the median: the part that is not the watcher;
- warm start: a restart on the state directory just written.

With --exporters K (1 to 3, default 1) every service is exported from K of
the three clusters, so that with per-cluster names (on, as by default) it
has 1 + K hosts: the "hosts" column counts them (the zone's names; each
has A, AAAA and SRV records).

Usage: scale.py BINARY [--changes N] [--exporters K] [SIZE[:FORMAT]...]  (FORMAT json or yaml)
       (default: 1000, 10000, 100000 and 1000000, JSON and YAML, but for
       1000000:yaml, which takes minutes to generate and load: ask for it)

Prints one Markdown table, with the machine and the command. Every figure
is wall time on whatever else the machine is doing: run it twice before
trusting a digit. Queries go to 127.0.0.1 only.
"""
import json
import os
import platform
import random
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

CLUSTERS = ["east", "west", "north"]
DEFAULT_SIZES = ["1000:json", "1000:yaml", "10000:json", "10000:yaml",
                 "100000:json", "100000:yaml", "1000000:json"]


EXPORTERS = 1


def entry(i, name, ns, fmt):
    clusters = [CLUSTERS[(i + j) % 3] for j in range(EXPORTERS)]
    if fmt == "json":
        return json.dumps({"name": name, "namespace": ns, "exportedFrom": clusters,
                           "ports": [{"name": "http", "number": 8080, "protocol": "HTTP"}]})
    return (f"  - {{name: {name}, namespace: {ns}, exportedFrom: [{', '.join(clusters)}], "
            f"ports: [{{name: http, number: 8080, protocol: HTTP}}]}}")


def registry_text(n, fmt, extras=()):
    """The registry of n services, and `extras` (name, namespace) after them."""
    names = [(f"svc-{i}", f"team-{i % 100}") for i in range(n)] + list(extras)
    entries = [entry(i, name, ns, fmt) for i, (name, ns) in enumerate(names)]
    if fmt == "json":
        clusters = json.dumps([{"name": c, "gateways": [{"address": f"192.0.2.{10 + i}"}]}
                               for i, c in enumerate(CLUSTERS)])
        return '{"clusters": ' + clusters + ', "services": [' + ", ".join(entries) + "]}"
    lines = ["clusters:"]
    for i, c in enumerate(CLUSTERS):
        lines.append(f"  - name: {c}\n    gateways: [{{address: 192.0.2.{10 + i}}}]")
    lines.append("services:")
    return "\n".join(lines + entries) + "\n"


def with_extra(base, n, fmt, extras):
    """`base` (n services) with the `extras` appended, built by splicing."""
    added = [entry(n + k, name, ns, fmt) for k, (name, ns) in enumerate(extras)]
    if fmt == "json":
        assert base.endswith("]}")
        return base[:-2] + "".join(", " + e for e in added) + "]}"
    return base + "".join(e + "\n" for e in added)


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


def wait_answer(sock, port, name, deadline_s=600):
    """Seconds until `name` gets NOERROR with an answer."""
    start = time.monotonic()
    while time.monotonic() - start < deadline_s:
        if rcode_and_answers(sock, port, name) == (0, 1):
            return time.monotonic() - start
        time.sleep(0.0005)
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


def serve(binary, registry, state, port, log):
    env = dict(os.environ, GLOBALDNS_LOG="info,globaldns::registry::file=debug", GLOBALDNS_LOG_FORMAT="json")
    return subprocess.Popen(
        [binary, "serve", "--registry", registry, "--listen", f"127.0.0.1:{port}",
         "--state-dir", state, "--vip-range-v6", "fd00:6c6f:6261:6c00::/64",
         "--reload-interval", "50ms", "--admin", "off"],
        stderr=log, env=env,
    )


def log_fields(log_path):
    """The `fields` of each line of a JSON log (GLOBALDNS_LOG_FORMAT=json)."""
    with open(log_path) as f:
        for line in f:
            try:
                yield json.loads(line).get("fields", {})
            except ValueError:
                continue


def server_work(log_path, skip):
    """Per publish after the first `skip`: ms from reading the file to
    publishing, from the server's log (parse + reconcile + save + build)."""
    parsed, works = [], []
    for fields in log_fields(log_path):
        message = fields.get("message", "")
        if message == "registry parsed and validated":
            parsed.append(fields.get("ms", 0))
        elif message == "registry published" and parsed:
            works.append(parsed[-1] + fields.get("reconcile_ms", 0)
                         + fields.get("save_table_ms", 0) + fields.get("build_ms", 0))
    return works[skip:]


def measure(binary, n, fmt, changes, work):
    registry = os.path.join(work, f"registry-{n}.{fmt}")
    state = os.path.join(work, f"state-{n}-{fmt}")
    log_path = os.path.join(work, f"log-{n}-{fmt}")
    base = registry_text(n, fmt)
    write_atomically(registry, base)
    port = free_port()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(0.05)
    probe = f"svc-{n - 1}.team-{(n - 1) % 100}.global"

    with open(log_path, "w") as log:
        start = time.monotonic()
        proc = serve(binary, registry, state, port, log)
        try:
            wait_answer(sock, port, probe)
            cold = time.monotonic() - start
            assert rcode_and_answers(sock, port, probe, 28) == (0, 1), "AAAA VIP"
            time.sleep(1.0)
            rss = rss_bytes(proc.pid)

            extras, times = [], []
            for k in range(changes):
                extras.append(("added", f"change-{k}"))
                text = with_extra(base, n, fmt, extras)
                time.sleep(0.3)  # the last change's after-work (last-good) settles
                write_atomically(registry, text)
                times.append(wait_answer(sock, port, f"added.change-{k}.global"))
            change = statistics.median(times)
        finally:
            proc.terminate()
            proc.wait()
    works = server_work(log_path, 1)
    work_ms = statistics.median(works) if works else float("nan")

    with open(log_path, "a") as log:
        start = time.monotonic()
        proc = serve(binary, registry, state, port, log)
        try:
            wait_answer(sock, port, probe)
            warm = time.monotonic() - start
        finally:
            proc.terminate()
            proc.wait()
    os.remove(registry)
    hosts = (n + changes) * (1 + EXPORTERS)  # the shared name and each per-cluster one
    return cold, warm, rss, hosts, rss / hosts, change, work_ms


def main():
    args = sys.argv[1:]
    if not args:
        raise SystemExit(__doc__)
    binary, args = args[0], args[1:]
    changes = 5
    if "--changes" in args:  # anywhere after the binary
        at = args.index("--changes")
        if at + 1 >= len(args) or not args[at + 1].isdigit():
            raise SystemExit("--changes takes a number\n\n" + __doc__)
        changes = int(args[at + 1])
        args = args[:at] + args[at + 2:]
    if "--exporters" in args:
        global EXPORTERS
        at = args.index("--exporters")
        if at + 1 >= len(args) or args[at + 1] not in ("1", "2", "3"):
            raise SystemExit("--exporters takes 1, 2 or 3\n\n" + __doc__)
        EXPORTERS = int(args[at + 1])
        args = args[:at] + args[at + 2:]
    for size in args:
        n, _, fmt = size.partition(":")
        if not n.isdigit() or fmt not in ("", "json", "yaml"):
            raise SystemExit(f"not a SIZE[:FORMAT]: {size!r}\n\n" + __doc__)
    sizes = args or DEFAULT_SIZES
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), platform.processor())
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {platform.node()}: "
          f"{os.cpu_count()} CPUs ({cpu}), Linux {platform.release()}")
    print(f"`python3 bench/scale.py {' '.join(sys.argv[1:])}` ({changes} changes, median)\n")
    print("| services | exporters | hosts | format | cold start | warm start | RSS | per host | change-to-answer | server work |")
    print("|---|---|---|---|---|---|---|---|---|---|", flush=True)
    with tempfile.TemporaryDirectory() as work:
        for size in sizes:
            n, _, fmt = size.partition(":")
            n, fmt = int(n), fmt or "yaml"
            cold, warm, rss, hosts, per_host, change, work_ms = measure(binary, n, fmt, changes, work)
            print(f"| {n:,} | {EXPORTERS} | {hosts:,} | {fmt.upper()} | {cold * 1000:,.0f} ms | {warm * 1000:,.0f} ms | "
                  f"{rss / 2**20:.1f} MiB | {per_host:,.0f} B | {change * 1000:,.0f} ms | "
                  f"{work_ms:,.0f} ms |", flush=True)


if __name__ == "__main__":
    main()
