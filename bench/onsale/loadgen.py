"""On-sale storm client: N keep-alive HTTP/1.1 connections POSTing holds until sold out.

Run by bench/onsale.py in its own process. Standard library only and a hand-rolled HTTP/1.1
client on asyncio protocols: it shares two cores with the server, so it must cost far less per
request than the request costs the server (httpx/aiohttp cost ~5-10x more CPU per request).

Input: a JSON file (see bench/onsale.py). Output: one JSON object on stdout.

Each connection binds to its own 127.x.y.z source address and moves to a fresh one every
``--per-address`` requests: real fans come from many networks, and the per-address velocity
limit (300 holds / 10 min) must see what it would see in production, not one address for all.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter
from pathlib import Path


class HttpConnection(asyncio.Protocol):
    """One keep-alive connection; ``request`` sends a request and waits for its response."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future | None = None
        self.closed = False

    def connection_made(self, transport) -> None:
        self.transport = transport

    def connection_lost(self, exc) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection closed by server"))

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.waiter is None or self.waiter.done():
            return
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buf[:end]).lower()
        length = 0
        at = head.find(b"content-length:")
        if at >= 0:
            eol = head.find(b"\r\n", at)
            length = int(head[at + 15:eol if eol >= 0 else len(head)])
        if len(self.buf) < end + 4 + length:
            return
        body = bytes(self.buf[end + 4:end + 4 + length])
        del self.buf[:end + 4 + length]
        status = int(head[9:12])
        self.waiter.set_result((status, body, b"connection: close" in head))

    async def request(self, payload: bytes) -> tuple[int, bytes, bool]:
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(payload)
        return await self.waiter


def percentile(sorted_values: list[int], q: float) -> float:
    if not sorted_values:
        return 0.0
    k = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[k] / 1000.0  # µs → ms


class Storm:
    def __init__(self, spec: dict, args: argparse.Namespace) -> None:
        self.spec = spec
        self.args = args
        self.users = spec["users"]  # [[token, device_id], ...]
        self.jobs = len(self.users) * spec["rounds"]
        self.next_job = 0
        self.next_address = 0
        self.stop = False
        self.ok = 0
        self.units = 0
        self.errors: Counter[str] = Counter()
        self.lat_all: list[int] = []
        self.lat_ok: list[int] = []
        self.first_sold_out: float | None = None
        self.last_ok: float = 0.0
        body = json.dumps({"zone_id": spec["zone_id"], "quantity": spec["quantity"]}).encode()
        head = (f"POST /api/booking/performances/{spec['performance_id']}/holds HTTP/1.1\r\n"
                f"Host: {args.host}\r\nContent-Type: application/json\r\n"
                f"X-Forwarded-Proto: https\r\nContent-Length: {len(body)}\r\n").encode()
        # Every buyer's request, encoded once before the storm: nothing is built per request.
        self.payloads = [head + f"Authorization: Bearer {token}\r\nX-Device-Id: {device}"
                         f"\r\n\r\n".encode() + body for token, device in self.users]

    def source_address(self) -> str:
        i = self.next_address
        self.next_address += 1
        # 127.<run>.<i // 250>.<i % 250 + 1>: a fresh range per run, never 127.0.0.x.
        return f"127.{self.args.run_octet}.{(i // 250) % 256}.{i % 250 + 1}"

    async def connect(self) -> HttpConnection:
        loop = asyncio.get_running_loop()
        _t, conn = await loop.create_connection(
            HttpConnection, self.args.host, self.args.port,
            local_addr=(self.source_address(), 0))
        return conn

    async def client(self, deadline: float) -> None:
        conn: HttpConnection | None = None
        used = 0
        while not self.stop and time.monotonic() < deadline and self.next_job < self.jobs:
            job = self.next_job
            self.next_job += 1
            payload = self.payloads[job % len(self.payloads)]
            if conn is None or conn.closed or used >= self.args.per_address:
                if conn is not None and conn.transport is not None:
                    conn.transport.close()
                try:
                    conn = await self.connect()
                except OSError as exc:
                    self.errors[f"connect:{type(exc).__name__}"] += 1
                    conn = None
                    await asyncio.sleep(0.05)
                    continue
                used = 0
            used += 1
            started = time.perf_counter_ns()
            try:
                status, body, close = await asyncio.wait_for(conn.request(payload),
                                                             self.args.timeout)
            except (TimeoutError, ConnectionError, OSError) as exc:
                self.errors[f"transport:{type(exc).__name__}"] += 1
                if conn.transport is not None:
                    conn.transport.close()
                conn = None
                continue
            elapsed = (time.perf_counter_ns() - started) // 1000
            self.lat_all.append(elapsed)
            if status == 201:
                self.ok += 1
                self.units += self.spec["quantity"]
                self.lat_ok.append(elapsed)
                self.last_ok = time.monotonic()
            else:
                try:
                    code = json.loads(body).get("code", "?")
                except ValueError:
                    code = "non-json"
                self.errors[f"{status}:{code}"] += 1
                if code == "sold_out":
                    if self.first_sold_out is None:
                        self.first_sold_out = time.monotonic()
                    self.stop = True
            if close:
                conn.transport.close()
                conn = None
        if conn is not None and conn.transport is not None:
            conn.transport.close()

    async def run(self) -> dict:
        start = time.monotonic()
        deadline = start + self.args.duration
        await asyncio.gather(*(self.client(deadline) for _ in range(self.args.clients)))
        end = time.monotonic()
        # Rate over the storm proper: until the last hold was granted (the tail of sold-out
        # answers after it is not part of selling).
        selling = max(1e-9, (self.last_ok or end) - start)
        self.lat_all.sort()
        self.lat_ok.sort()
        return {
            "clients": self.args.clients,
            "requests": len(self.lat_all) + sum(v for k, v in self.errors.items()
                                                if not k[0].isdigit()),
            "holds": self.ok,
            "units": self.units,
            "selling_s": round(selling, 3),
            "total_s": round(end - start, 3),
            "holds_per_s": round(self.ok / selling, 1),
            "timed_out": end >= deadline,
            "errors": dict(self.errors.most_common()),
            "latency_ms": {name: {f"p{int(q * 100)}": round(percentile(values, q), 2)
                                  for q in (0.5, 0.95, 0.99)}
                           | {"max": round(values[-1] / 1000, 2) if values else 0.0}
                           for name, values in (("all", self.lat_all), ("ok", self.lat_ok))},
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", type=Path)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--duration", type=float, default=120.0, help="hard stop, seconds")
    parser.add_argument("--timeout", type=float, default=30.0, help="per request, seconds")
    parser.add_argument("--per-address", type=int, default=100)
    parser.add_argument("--run-octet", type=int, default=1)
    args = parser.parse_args()
    if args.host != "127.0.0.1":
        parser.error("the storm is loopback-only: --host must be 127.0.0.1")
    spec = json.loads(args.spec.read_text())
    print(json.dumps(asyncio.run(Storm(spec, args).run())))


if __name__ == "__main__":
    main()
