"""A closed-loop HTTP/1.1 load generator in pure Python (asyncio), for when `wrk` is absent.

Runs in its own process: `clients` connections each send one request, wait for the whole
response, and send the next, until `duration` seconds have passed (or `max_requests` were
sent). It speaks only to 127.0.0.1 (or another loopback address): any other host is
refused. Keep-alive is used when the server allows it; a server that closes the connection
(gunicorn's sync workers do) gets a new one, and the connect time counts in the latency.

Prints one JSON object: {"requests", "seconds", "rps", "errors", "statuses", "p50_ms",
"p90_ms", "p99_ms", "max_ms", "mean_ms", "cpu_s"} (cpu_s: this process's own CPU time, so
a reader can see what the generator took from a 2-core machine).

Usage: python bench/loadgen.py --port 8000 --path /v1/projections/x --clients 8 --duration 5
       [--method POST --body '{"events": [...]}' --header 'Authorization: Bearer …']
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import statistics
import time
from collections import Counter
from typing import Any

LOOPBACK_NAMES = {"localhost"}


def check_loopback(host: str) -> None:
    """Refuse any target but this machine. Raises ValueError."""
    if host in LOOPBACK_NAMES:
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise ValueError(f"refusing to load {host!r}: only loopback addresses are allowed")


def percentile(sorted_values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank."""
    if not sorted_values:
        return 0.0
    k = max(0, min(len(sorted_values) - 1, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[k]


def build_request(method: str, host: str, port: int, path: str, body: bytes, headers: list[str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: keep-alive"]
    lines += headers
    if body:
        lines += [f"Content-Length: {len(body)}"]
        if not any(h.lower().startswith("content-type:") for h in headers):
            lines.append("Content-Type: application/json")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one response; returns (status, server keeps the connection open)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length, keep, chunked = 0, True, False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "connection":
            keep = value.strip().lower() != "close"
        elif name == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status, keep


async def client(
    host: str, port: int, request: bytes, deadline: float, budget: list[int], out: list[float], statuses: Counter[int]
) -> None:
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    while time.perf_counter() < deadline and budget[0] > 0:
        budget[0] -= 1
        started = time.perf_counter()
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            assert reader is not None
            writer.write(request)
            status, keep = await read_response(reader)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            statuses[0] += 1  # 0: a connection or protocol error
            if writer is not None:
                writer.close()
            reader = writer = None
            continue
        out.append(time.perf_counter() - started)
        statuses[status] += 1
        if not keep:
            writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


async def run(host: str, port: int, request: bytes, clients: int, duration: float, max_requests: int) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    budget = [max_requests]
    started = time.perf_counter()
    deadline = started + duration
    await asyncio.gather(*(client(host, port, request, deadline, budget, latencies, statuses) for _ in range(clients)))
    seconds = time.perf_counter() - started
    ms = sorted(x * 1000 for x in latencies)
    ok = sum(n for s, n in statuses.items() if 200 <= s < 300)
    return {
        "requests": len(ms),
        "ok": ok,
        "seconds": round(seconds, 3),
        "rps": round(ok / seconds, 1),
        "errors": sum(statuses.values()) - ok,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "p50_ms": round(percentile(ms, 50), 2),
        "p90_ms": round(percentile(ms, 90), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "max_ms": round(ms[-1], 2) if ms else 0.0,
        "mean_ms": round(statistics.fmean(ms), 2) if ms else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--method", default="GET")
    parser.add_argument("--body", default="")
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds (at most 60)")
    parser.add_argument("--max-requests", type=int, default=1_000_000)
    args = parser.parse_args()
    check_loopback(args.host)
    duration = min(args.duration, 60.0)  # bounded whatever the caller asks
    request = build_request(args.method, args.host, args.port, args.path, args.body.encode(), args.header)
    cpu = time.process_time()
    result = asyncio.run(run(args.host, args.port, request, args.clients, duration, args.max_requests))
    result["cpu_s"] = round(time.process_time() - cpu, 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
