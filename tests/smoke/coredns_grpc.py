#!/usr/bin/env python3
"""The CoreDNS gRPC endpoint against an independent client: gRPC's own C
core (PyPI `grpcio`), making the call CoreDNS's grpc plugin makes.

Usage: pip install grpcio && python3 tests/smoke/coredns_grpc.py BINARY
Not run by .ci/run (it needs PyPI); run it by hand after changing
src/dns/grpc.rs. Talks to 127.0.0.1 only.
"""
import socket
import struct
import subprocess
import sys
import tempfile
import time

import grpc


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def packet(msg):
    n, out = len(msg), b"\x0a"
    while n >= 0x80:
        out += bytes([(n & 0x7F) | 0x80])
        n >>= 7
    return out + bytes([n]) + msg


def unpacket(data):
    assert data[0] == 0x0A
    n, shift, i = 0, 0, 1
    while True:
        n |= (data[i] & 0x7F) << shift
        i += 1
        if data[i - 1] < 0x80:
            return data[i:i + n]
        shift += 7


def query(name, qtype=1, qid=7):
    b = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        b += bytes([len(label)]) + label.encode()
    return b + b"\x00" + struct.pack(">HH", qtype, 1)


def main():
    binary = sys.argv[1]
    dns, rpc = free_port(), free_port()
    with tempfile.TemporaryDirectory() as state:
        server = subprocess.Popen(
            [binary, "serve", "--registry", "examples/registry.yaml", "--listen",
             f"127.0.0.1:{dns}", "--state-dir", state, "--grpc", f"127.0.0.1:{rpc}"],
            stderr=subprocess.DEVNULL)
        try:
            time.sleep(1)
            channel = grpc.insecure_channel(f"127.0.0.1:{rpc}")
            call = channel.unary_unary("/coredns.dns.DnsService/Query",
                                       request_serializer=lambda x: x,
                                       response_deserializer=lambda x: x)
            failures = 0
            for name, qtype, rcode, answers in [
                ("httpbin.bar.global", 1, 0, 1),
                ("httpbin.bar.global", 28, 0, 0),
                ("nope.bar.global", 1, 3, 0),
                ("example.com", 1, 5, 0),
            ]:
                msg = unpacket(call(packet(query(name, qtype)), timeout=5))
                got = (struct.unpack(">H", msg[:2])[0], msg[3] & 15, struct.unpack(">H", msg[6:8])[0])
                ok = got == (7, rcode, answers)
                failures += not ok
                print(f"{'ok  ' if ok else 'FAIL'} {name} type {qtype}: id/rcode/answers {got}")
            try:
                channel.unary_unary("/coredns.dns.DnsService/Nope",
                                    request_serializer=lambda x: x,
                                    response_deserializer=lambda x: x)(b"", timeout=5)
                failures += 1
                print("FAIL unknown method answered")
            except grpc.RpcError as e:
                ok = e.code() == grpc.StatusCode.UNIMPLEMENTED
                failures += not ok
                print(f"{'ok  ' if ok else 'FAIL'} unknown method: {e.code()}")
        finally:
            server.terminate()
            server.wait()
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
