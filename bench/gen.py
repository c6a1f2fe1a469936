#!/usr/bin/env python3
"""Writes a benchmark registry of N services and a dnsperf query file.

Usage: gen.py N REGISTRY QUERIES [COUNT]

The query mix is the issue's: 80% A for known hosts, 10% AAAA for known
hosts (NODATA: no IPv6 range is configured), 10% A for names that do not
exist (NXDOMAIN). Seeded, so every run asks the same questions.
"""
import random
import sys


def main():
    n = int(sys.argv[1])
    registry, queries = sys.argv[2], sys.argv[3]
    count = int(sys.argv[4]) if len(sys.argv) > 4 else 200_000
    clusters = ["east", "west", "north"]
    with open(registry, "w") as f:
        f.write("clusters:\n")
        for i, c in enumerate(clusters):
            f.write(f"  - name: {c}\n    gateways: [{{address: 192.0.2.{10 + i}}}]\n")
        f.write("services:\n")
        for i in range(n):
            f.write(
                f"  - {{name: svc-{i}, namespace: team-{i % 100}, "
                f"exportedFrom: [{clusters[i % 3]}], "
                f"ports: [{{name: http, number: 8080, protocol: HTTP}}]}}\n"
            )
    rng = random.Random(20261122)
    with open(queries, "w") as f:
        for _ in range(count):
            roll = rng.random()
            i = rng.randrange(n)
            host = f"svc-{i}.team-{i % 100}.global"
            if roll < 0.8:
                f.write(f"{host} A\n")
            elif roll < 0.9:
                f.write(f"{host} AAAA\n")
            else:
                f.write(f"missing-{rng.randrange(1 << 30)}.team-{i % 100}.global A\n")


if __name__ == "__main__":
    main()
