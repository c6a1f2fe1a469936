#!/usr/bin/env python3
"""Kubernetes mode, end to end: change-to-answer of one new ExportedService
against a real API server, with few objects and with many in the same run.

For each size (default 100, then 10000), in one namespace of the cluster
KUBECONFIG names: the registry resources of that many services are applied
(`globaldns export-resources | kubectl apply --server-side`, or as the
README does with --client-side), globaldns is started on them
(`serve --registry kubernetes`, an empty state directory)
and waited for until the last host answers; then CHANGES times a new
ExportedService is applied and the time is taken from kubectl's return (the
object is stored) until its host answers; RSS is taken once the last host
answers. The change-to-answer includes the watch's
delivery and its debounce (a change is built once the watch has been quiet
for 200 ms). `server build` is what the server's log says building the
registry from the resources took for those changes. The few-objects row is
the reference: what a change costs apart from the number of objects.

Usage: k8s_answer.py BINARY [--changes N] [--client-side] [SIZE...]
--client-side applies with plain `kubectl apply` (as the README shows),
which keeps each object's last applied configuration in an annotation,
instead of `kubectl apply --server-side`.
Needs KUBECONFIG (any cluster: envtest's kube-up.sh, kind, ...) with the
right to create namespaces, CRDs and registry resources. Creates the
namespace globaldns-bench-<random> and deletes it at the end; the CRDs are
applied and left (they are globaldns' own). DNS queries go to 127.0.0.1.
"""
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from scale import free_port, log_fields, rcode_and_answers, rss_bytes, wait_answer  # noqa: E402

CLUSTERS = ["east", "west", "north"]


def registry_json(first, count):
    services = [{"name": f"svc-{i}", "namespace": f"team-{i % 100}",
                 "exportedFrom": [CLUSTERS[i % 3]],
                 "ports": [{"name": "http", "number": 8080, "protocol": "HTTP"}]}
                for i in range(first, first + count)]
    clusters = [{"name": c, "gateways": [{"address": f"192.0.2.{10 + i}"}]}
                for i, c in enumerate(CLUSTERS)]
    return json.dumps({"clusters": clusters, "services": services})


# `kubectl apply` arguments: server-side unless --client-side is given.
APPLY = ["apply", "--server-side", "--field-manager=bench"]


def kubectl(*args, stdin=None):
    subprocess.run(["kubectl", *args], input=stdin, check=True, text=True,
                   stdout=subprocess.DEVNULL)


def apply_services(binary, namespace, first, count, work):
    """Applies services first..first+count as registry resources."""
    path = os.path.join(work, "registry.json")
    with open(path, "w") as f:
        f.write(registry_json(first, count))
    yaml = subprocess.run([binary, "export-resources", "--registry", path,
                           "--namespace", namespace],
                          check=True, text=True, capture_output=True).stdout
    kubectl(*APPLY, "-f", "-", stdin=yaml)


def builds(log_path, skip):
    """ms of each registry build from the resources after the first `skip`."""
    return [fields.get("ms", 0) for fields in log_fields(log_path)
            if fields.get("message") == "registry built from the registry resources"][skip:]


def measure(binary, namespace, size, changes, work):
    state = tempfile.mkdtemp(dir=work)
    log_path = os.path.join(work, f"log-{size}")
    port = free_port()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(0.05)
    env = dict(os.environ, GLOBALDNS_LOG="info,globaldns::registry::kube::source=debug",
               GLOBALDNS_LOG_FORMAT="json")
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [binary, "serve", "--registry", "kubernetes", "--kube-namespace", namespace,
             "--cluster", "east", "--state-dir", state, "--listen", f"127.0.0.1:{port}",
             "--admin", "off"],
            stderr=log, env=env)
        try:
            last = size - 1
            wait_answer(sock, port, f"svc-{last}.team-{last % 100}.global")
            time.sleep(1.0)
            rss = rss_bytes(proc.pid)
            before = len(builds(log_path, 0))
            times = []
            for k in range(changes):
                name = f"added-{size}-{k}"
                kubectl(*APPLY, "-f", "-", stdin=json.dumps({
                    "apiVersion": "globaldns.io/v1alpha1", "kind": "ExportedService",
                    "metadata": {"name": name, "namespace": namespace},
                    "spec": {"name": name, "namespace": "bench", "exportedFrom": ["west"],
                             "ports": [{"name": "http", "number": 8080, "protocol": "HTTP"}]}}))
                times.append(wait_answer(sock, port, f"{name}.bench.global", deadline_s=60))
                time.sleep(0.5)
            assert rcode_and_answers(sock, port, "svc-0.team-0.global") == (0, 1)
        finally:
            proc.terminate()
            proc.wait()
    work_ms = builds(log_path, before)
    build = statistics.median(work_ms) if work_ms else float("nan")
    return statistics.median(times), build, rss


def main():
    args = sys.argv[1:]
    if not args or args[0].startswith("-"):
        raise SystemExit(__doc__)
    binary = args.pop(0)
    changes = 7
    if "--changes" in args:
        at = args.index("--changes")
        changes = int(args[at + 1])
        del args[at:at + 2]
    if "--client-side" in args:
        args.remove("--client-side")
        APPLY[:] = ["apply"]
    try:
        sizes = sorted(int(a) for a in args) or [100, 10000]
    except ValueError:
        raise SystemExit(f"a size is a number of services: {args}\n\n" + __doc__)
    if "KUBECONFIG" not in os.environ:
        raise SystemExit("KUBECONFIG must name the cluster to run against\n\n" + __doc__)
    namespace = f"globaldns-bench-{random.randrange(16**6):06x}"
    crds = subprocess.run([binary, "crds"], check=True, text=True, capture_output=True).stdout
    kubectl("apply", "--server-side", "-f", "-", stdin=crds)
    kubectl("wait", "--for=condition=Established", "crd/exportedservices.globaldns.io",
            "crd/meshclusters.globaldns.io")
    kubectl("create", "namespace", namespace)
    print(f"`python3 bench/k8s_answer.py {' '.join(sys.argv[1:])}` "
          f"({changes} changes, median)\n")
    print("| ExportedServices | applied in | RSS | change-to-answer | server build |")
    print("|---|---|---|---|---|")
    try:
        with tempfile.TemporaryDirectory() as work:
            have = 0
            for size in sizes:
                started = time.monotonic()
                apply_services(binary, namespace, have, size - have, work)
                applied = time.monotonic() - started
                have = size
                change, build, rss = measure(binary, namespace, size, changes, work)
                print(f"| {size:,} | {applied:.0f} s | {rss / 2**20:.1f} MiB | "
                      f"{change * 1000:,.0f} ms | {build:.0f} ms |", flush=True)
    finally:
        kubectl("delete", "namespace", namespace, "--wait=false")


if __name__ == "__main__":
    main()
