"""Subscriber benchmark: N WebSocket subscribers on one API process while
writes run through it.

Prints write throughput without and with the subscribers (same run, same
database), delivery latency p50/p99 and server memory per subscriber.

    .venv/bin/python -m bench.subscribers --subscribers 1000 --seconds 15

Commit-to-delivery is measured from each writing transaction's commit time,
as PostgreSQL records it (`track_commit_timestamp`, turned on in the embedded
server; one host, one clock), to the event's arrival at a subscriber. Two more
figures bracket it, and are all there is with `--database-url` on a server
without commit timestamps: from the transaction's start (`at`), an upper bound
(it includes the write's own duration); and from the writer's receiving its
answer (after COMMIT), a lower bound (negative when the event arrives before the
answer). The target is a commit-to-delivery p99 under 100 ms.

By default one API process serves the writers and the subscribers; with
`--subscriber-process` the subscribers connect to an API process of their own
(the service's processes are stateless and each runs its own change feed), and
`--subscriber-poll-interval` sets that process's feed interval.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import select
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable as bench/subscribers.py
from inventory.db import embedded, migrate  # noqa: E402
from tests.live_support import WsClient  # noqa: E402
from tests.support import API_KEYS, Api, create_api_key, free_port  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BENCH_KEY_VAR = "INVENTORY_BENCH_API_KEY"  # the API key, parent to subscriber process
# Server settings for a benchmark with many subscribers on one key: the socket
# cap per credential (20 by default) would refuse all but the first sockets.
SERVER_ENV = {"INVENTORY_WS_PER_CREDENTIAL": "0"}
IDLE_SECONDS = 3


def connect_deadline(count: int) -> float:
    """Seconds the subscriber process may take to connect `count` sockets (the
    machine may be loaded: generous, but bounded)."""
    return 60 + count * 0.1


class SubscriberProcess:
    """The subscriber role of this module in its own process (so that receiving
    does not compete with the writers' event loop): `count` WebSockets, each
    subscribed to one of `skus`. The constructor returns once every one is
    subscribed, or raises SystemExit with the reason (a refused socket, a
    deadline) instead of waiting for ever."""

    def __init__(self, url: str, count: int, skus: list[str], api_key: str):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.subscribers", "--role", "subscribers",
             "--url", url, "--subscribers", str(count), "--skus", ",".join(skus)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
            # The key goes by environment, not argv (which `ps` shows).
            env={**os.environ, BENCH_KEY_VAR: api_key})
        wait = connect_deadline(count) + 15
        ready, _, _ = select.select([self.process.stdout], [], [], wait)
        line = self.process.stdout.readline() if ready else ""
        if line.strip() != "ready":
            self.process.kill()
            self.process.wait()
            said = line.strip() or (f"nothing within {wait:.0f} s" if not ready
                                    else f"nothing (exit status {self.process.returncode})")
            raise SystemExit(f"the subscriber process did not get {count} subscriptions "
                             f"going: {said}")
        # The last subscriptions may still be starting on the server.
        time.sleep(2)

    def stop(self) -> dict:
        """Closes every socket; what the subscribers received."""
        out, _ = self.process.communicate("stop\n", 120)
        return json.loads(out)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used: unlike rates, it is
    not inflated by other processes competing for the machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def servers_cpu(servers: list) -> float:
    return sum(cpu_s(process.pid) for process in servers)


def serve(port: int, env: dict, log_path: Path, trace: Path | None = None
          ) -> subprocess.Popen:
    """One `inventory serve` process, its output to `log_path`; with `trace`,
    through bench/feed_trace.py, which writes its timestamps there at exit."""
    log = open(log_path, "ab")
    module = ["inventory.cli"] if trace is None else ["bench.feed_trace", str(trace)]
    return subprocess.Popen([sys.executable, "-m", *module, "serve", "--port", str(port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)


STAGES = ("poll_start", "poll_end", "deliver_start", "deliver_end", "send_start",
          "first_sent", "last_sent")


def print_trace(path: Path, committed: dict, arrivals: list) -> None:
    """Where commit-to-delivery went (bench/feed_trace.py's timestamps):
    each stage's time after the commit, over the events, and the subscriber
    client's share (arrival after its event's last frame write)."""
    trace = json.loads(path.read_text())
    events = trace["changes"]
    after: dict[str, list[float]] = {stage: [] for stage in STAGES}
    for key, times in events.items():
        sku, version = key.rsplit("/", 1)
        at = committed.get((sku, int(version)))
        if at is None:
            continue
        for stage in STAGES:
            if stage in times:
                after[stage].append(times[stage] - at)
    client = [arrived - events[f"{sku}/{version}"]["last_sent"]
              for sku, version, arrived in arrivals
              if "last_sent" in events.get(f"{sku}/{version}", {})]
    print(f"trace: {len(events)} events; ms after the commit, p50 / p90 / p99:")
    for stage in STAGES:
        values = after[stage]
        print(f"  {stage:14s} {pct(values, .5) * 1000:7.1f} {pct(values, .9) * 1000:7.1f} "
              f"{pct(values, .99) * 1000:7.1f}")
    print(f"  client: arrival - its event's last frame write: p50 {pct(client, .5) * 1000:.1f}"
          f", p90 {pct(client, .9) * 1000:.1f}, p99 {pct(client, .99) * 1000:.1f} ms")
    polls = [p for p in trace["polls"] if p[3]]
    if polls:
        starts = sorted(p[0] for p in polls)
        spacing = [b - a for a, b in zip(starts, starts[1:])]
        print(f"  polls with rows {len(polls)}: wall p50 {pct([p[1] - p[0] for p in polls], .5) * 1000:.1f}"
              f" ms, p99 {pct([p[1] - p[0] for p in polls], .99) * 1000:.1f} ms; CPU p50 "
              f"{pct([p[2] for p in polls], .5) * 1000:.2f} ms; spacing p50 "
              f"{pct(spacing, .5) * 1000:.1f} ms, p99 {pct(spacing, .99) * 1000:.1f} ms; "
              f"rows p50 {pct([p[3] for p in polls], .5):.0f}")
    lags = [lag for _, lag in trace["lags"]]
    print(f"  event loop lag (a 5 ms sleep's overshoot): p50 {pct(lags, .5) * 1000:.1f} ms, "
          f"p90 {pct(lags, .9) * 1000:.1f} ms, p99 {pct(lags, .99) * 1000:.1f} ms")


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def record_commit_times(url: str, server) -> None:
    """Turns on the embedded server's commit timestamps (a restart)."""
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET track_commit_timestamp = on")
    embedded.restart(server)


def commit_times(url: str, skus: list[str], code: str) -> dict[tuple[str, int], float]:
    """(sku, version) -> when its transaction committed (epoch seconds), from
    PostgreSQL's commit timestamps; empty when the server does not keep them."""
    with psycopg.connect(libpq(url)) as conn:
        if conn.execute("SHOW track_commit_timestamp").fetchone()[0] != "on":
            return {}
        rows = conn.execute("""
            SELECT i.sku, m.version, extract(epoch FROM pg_xact_commit_timestamp(
                       (m.xact_id::text::numeric %% 4294967296)::text::xid))
            FROM movements m JOIN items i ON i.tenant_id = m.tenant_id AND i.id = m.item_id
            JOIN locations l ON l.tenant_id = m.tenant_id AND l.id = m.location_id
            WHERE i.sku = ANY(%s) AND l.code = %s""", (skus, code)).fetchall()
    return {(sku, version): float(at) for sku, version, at in rows if at is not None}


async def write_load(api: Api, skus: list[str], code: str, writers: int, seconds: float,
                     acks: dict | None = None):
    """Closed-loop writers doing adjustStock +-1 on random levels; `acks` gets
    (sku, version) -> when its answer arrived (epoch seconds)."""
    done, failed, latencies = 0, 0, []
    deadline = time.monotonic() + seconds

    async def writer():
        nonlocal done, failed
        while time.monotonic() < deadline:
            started = time.monotonic()
            sku = random.choice(skus)
            result = await api.mutate("adjustStock", {
                "sku": sku, "locationCode": code, "delta": random.choice((1, -1))},
                "... on StockLevel { version }")
            if result["__typename"] != "StockLevel":
                failed += 1  # e.g. TRANSACTION_CONFLICT after exhausting retries
                continue
            if acks is not None:
                acks[(sku, result["version"])] = time.time()
            latencies.append(time.monotonic() - started)
            done += 1

    async def progress():
        while time.monotonic() < deadline:
            await asyncio.sleep(5)
            print(f"  ... {done} writes", flush=True)

    ticker = asyncio.create_task(progress())
    await asyncio.gather(*(writer() for _ in range(writers)))
    ticker.cancel()
    if failed:
        print(f"  {failed} writes failed (typed errors)", flush=True)
    return done / seconds, latencies


async def main(args) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="bench-subscribers-"))
    url, server_handle = args.database_url, None
    if not url:
        url, server_handle = embedded.start(data_dir)
    try:
        if server_handle is not None:
            record_commit_times(url, server_handle)
        await run(args, url, data_dir)
    finally:
        if server_handle is not None:
            # Restarted (commit timestamps), it is no longer the server its
            # handle would stop at exit: stopped here.
            embedded.stop(server_handle)
        # The database and the server's log go with the run (--keep keeps them).
        if args.keep:
            print(f"kept {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)


async def run(args, url: str, data_dir: Path) -> None:
    migrate.upgrade(url)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # An all-scopes key for the default tenant: Api and WsClient send the key
    # registered for their URL (HTTP header, connection_init).
    api_key = create_api_key(url, name="bench subscribers")
    API_KEYS[base] = api_key
    env = {**os.environ, "INVENTORY_DATABASE_URL": url, "INVENTORY_SEED_DEMO": "0",
           "INVENTORY_LOG_LEVEL": "WARNING", "INVENTORY_SWEEP_INTERVAL": "0",
           # The benchmark measures fan-out, not the rate limiter: limits off.
           "INVENTORY_RATE_READ": "0", "INVENTORY_RATE_WRITE": "0"}
    env.update(SERVER_ENV)
    trace = data_dir / "trace.json" if args.trace else None
    server = serve(port, env, data_dir / "api.log", None if args.subscriber_process else trace)
    # --subscriber-process: the subscribers on an API process of their own (both
    # processes share the database and each runs its own feed).
    sub_server, sub_base = server, base
    if args.subscriber_process:
        sub_port = free_port()
        sub_base = f"http://127.0.0.1:{sub_port}"
        API_KEYS[sub_base] = api_key
        sub_env = dict(env)
        if args.subscriber_poll_interval is not None:
            sub_env["INVENTORY_CHANGE_POLL_INTERVAL"] = str(args.subscriber_poll_interval)
        sub_server = serve(sub_port, sub_env, data_dir / "api-subscribers.log", trace)
    servers = [server] if sub_server is server else [server, sub_server]
    subs = None
    try:
        async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=64)) as c:
            for url_ in {base, sub_base}:
                for _ in range(300):
                    try:
                        if (await c.get(url_ + "/readyz")).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    await asyncio.sleep(0.1)
            api = Api(c, base)
            print(f"setting up {args.levels} levels ...", flush=True)
            code = await api.location()
            skus = [await api.item() for _ in range(args.levels)]
            for sku in skus:
                await api.receive(sku, code, 1_000_000)

            print(f"baseline: {args.writers} writers, {args.seconds}s, no subscribers",
                  flush=True)
            cpu0 = servers_cpu(servers)
            base_rate, base_lat = await write_load(api, skus, code, args.writers, args.seconds)
            base_cpu = (servers_cpu(servers) - cpu0) / max(1, base_rate * args.seconds)
            idle_rss = rss_mb(sub_server.pid)

            print(f"connecting {args.subscribers} subscribers (separate process) ...",
                  flush=True)
            subs = await asyncio.to_thread(SubscriberProcess, sub_base, args.subscribers, skus,
                                           api_key)
            subscribed_rss = rss_mb(sub_server.pid)
            idle_cpu0 = servers_cpu(servers)
            await asyncio.sleep(IDLE_SECONDS)  # no writes: what open sockets cost alone
            upkeep = (servers_cpu(servers) - idle_cpu0) / IDLE_SECONDS

            print(f"with subscribers: {args.writers} writers, {args.seconds}s", flush=True)
            cpu0, client_cpu0 = servers_cpu(servers), cpu_s(subs.process.pid)
            writers_cpu0 = cpu_s(os.getpid())
            acks: dict = {}
            rate, lat = await write_load(api, skus, code, args.writers, args.seconds, acks)
            writes = int(rate * args.seconds)
            client_busy = (cpu_s(subs.process.pid) - client_cpu0) / args.seconds
            writers_busy = (cpu_s(os.getpid()) - writers_cpu0) / args.seconds
            await asyncio.sleep(2)  # let the last events arrive
            sub_cpu = (servers_cpu(servers) - cpu0) / max(1, writes)
            expected = writes * args.subscribers / len(skus)
            result = await asyncio.to_thread(subs.stop)
            received, overflowed, delays = (result["received"], result["overflowed"],
                                            result["delays"])
            failed = result["failed"]
            after_ack = [arrived - acks[(sku, version)]
                         for sku, version, arrived in result["arrivals"]
                         if (sku, version) in acks]
            committed = commit_times(url, skus, code)
            after_commit = [arrived - committed[(sku, version)]
                            for sku, version, arrived in result["arrivals"]
                            if (sku, version) in committed]
    finally:
        if subs is not None:
            subs.kill()
        for process in servers:
            process.terminate()
            process.wait(10)

    print()
    print(f"subscribers {args.subscribers} over {len(skus)} levels "
          f"(~{args.subscribers / len(skus):.0f} per level), writers {args.writers}, "
          f"{args.seconds}s per phase")
    if args.subscriber_process:
        poll = args.subscriber_poll_interval
        print("deployment: writers on one API process, the subscribers on another "
              f"(its feed polls every {'the default' if poll is None else f'{poll} s'}); "
              "server CPU below is both processes'")
    else:
        print("deployment: writers and subscribers on one API process")
    print(f"write throughput without subscribers: {base_rate:8.1f}/s  "
          f"(write p50 {pct(base_lat, .5) * 1000:.1f} ms, p99 {pct(base_lat, .99) * 1000:.1f} ms)")
    print(f"write throughput with subscribers:    {rate:8.1f}/s  "
          f"(write p50 {pct(lat, .5) * 1000:.1f} ms, p99 {pct(lat, .99) * 1000:.1f} ms)  "
          f"ratio {rate / base_rate:.2f}")
    print(f"server CPU per write: {base_cpu * 1000:.2f} ms without subscribers, "
          f"{sub_cpu * 1000:.2f} ms with (incl. fan-out to "
          f"~{args.subscribers / len(skus):.0f} subscribers each, and idle socket upkeep)")
    print(f"server CPU with the subscribers connected and no writes: {upkeep:.1%} of one "
          f"core ({upkeep / max(rate, 1e-9) * 1000:.2f} ms per write at the rate above)")
    print(f"events delivered {received} of ~{expected:.0f} expected; "
          f"subscriptions closed by overflow {overflowed}, by another error {failed}")
    print(f"delivery latency (txn start -> subscriber): p50 {pct(delays, .5) * 1000:.1f} ms, "
          f"p99 {pct(delays, .99) * 1000:.1f} ms, max {max(delays or [0]) * 1000:.1f} ms")
    print(f"delivery latency (writer's answer -> subscriber): "
          f"p50 {pct(after_ack, .5) * 1000:.1f} ms, p99 {pct(after_ack, .99) * 1000:.1f} ms, "
          f"max {max(after_ack or [0]) * 1000:.1f} ms")
    print(f"server RSS idle {idle_rss:.1f} MB, with subscribers {subscribed_rss:.1f} MB: "
          f"{(subscribed_rss - idle_rss) * 1024 / args.subscribers:.1f} KB per subscriber")
    print(f"subscriber client process: {client_busy:.0%} of one core while writing "
          f"(near 100%, its own lag adds to the latencies)")
    # The benchmark's own clients share the machine's cores with the server and
    # the database: what they take is not the server's, but the server waits for it.
    print(f"writer client process (this one): {writers_busy:.0%} of one core while writing "
          f"with subscribers")
    if trace is not None:
        print_trace(trace, committed, result["arrivals"])
    print(f"machine load average (1, 5, 15 min) at the end: "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    if after_commit:
        p99 = pct(after_commit, .99) * 1000
        print(f"COMMIT-TO-DELIVERY (commit timestamp -> subscriber), {len(after_commit)} "
              f"events: p50 {pct(after_commit, .5) * 1000:.1f} ms, p99 {p99:.1f} ms, "
              f"max {max(after_commit) * 1000:.1f} ms; target p99 < 100 ms: "
              f"{'met' if p99 < 100 else 'NOT met'}")
    else:
        print("COMMIT-TO-DELIVERY: no commit timestamps (track_commit_timestamp is off on "
              "that server); it lies between the two latencies above")


def refusal(error: BaseException) -> str:
    """Why a subscriber could not connect, for the parent's message."""
    closed = getattr(error, "rcvd", None)  # websockets' ConnectionClosed
    if closed is not None:
        return f"the server closed a socket with {closed.code} {closed.reason!r}"
    return f"{type(error).__name__}: {error}"


async def subscribers_role(args) -> None:
    """Child process: N subscribers; prints `ready`, then on `stop` (stdin)
    prints what they received as JSON."""
    skus = args.skus.split(",")
    API_KEYS[args.url] = os.environ[BENCH_KEY_VAR]
    delays: list[float] = []
    arrivals: list[tuple[str, int, float]] = []
    counts = {"received": 0, "overflowed": 0, "failed": 0}
    clients: list[WsClient] = []

    async def subscriber(i: int) -> None:
        client = WsClient(args.url)
        await client.__aenter__()
        clients.append(client)
        await client.subscribe(
            "subscription($skus: [String!]) { stockLevelChanged(skus: $skus) "
            "{ sku version at } }", {"skus": [skus[i % len(skus)]]})
        async for raw in client.ws:
            now = time.time()
            message = json.loads(raw)
            if message["type"] != "next":
                continue
            if "errors" in message["payload"]:
                code = message["payload"]["errors"][0].get("extensions", {}).get("code")
                counts["overflowed" if code == "SUBSCRIPTION_OVERFLOW" else "failed"] += 1
                return
            event = message["payload"]["data"]["stockLevelChanged"]
            delays.append(now - datetime.fromisoformat(event["at"]).timestamp())
            arrivals.append((event["sku"], event["version"], now))
            counts["received"] += 1

    tasks: list[asyncio.Task] = []
    deadline = time.monotonic() + connect_deadline(args.subscribers)
    for start in range(0, args.subscribers, 100):
        tasks += [asyncio.create_task(subscriber(i))
                  for i in range(start, min(args.subscribers, start + 100))]
        while len(clients) < len(tasks):
            failed = next((t for t in tasks if t.done() and t.exception() is not None), None)
            if failed is not None or time.monotonic() > deadline:
                reason = (refusal(failed.exception()) if failed is not None else
                          f"only {len(clients)} connected within "
                          f"{connect_deadline(args.subscribers):.0f} s")
                print(f"failed: {reason}", flush=True)
                raise SystemExit(1)
            await asyncio.sleep(0.05)
        print(f"  ... {len(clients)} connected", file=sys.stderr, flush=True)
    await asyncio.sleep(0.5)
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*(c.ws.close() for c in clients), return_exceptions=True)
    print(json.dumps({**counts, "delays": delays, "arrivals": arrivals}), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--levels", type=int, default=50)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--subscriber-process", action="store_true",
                        help="serve the subscribers from an API process of their own "
                             "(default: the writers' process serves them too)")
    parser.add_argument("--subscriber-poll-interval", type=float,
                        help="with --subscriber-process: its feed's poll interval in "
                             "seconds (default: the service's, 0.05); commits of the "
                             "writers' process do not wake it")
    parser.add_argument("--trace", action="store_true",
                        help="serve the subscribers through bench/feed_trace.py and print "
                             "where commit-to-delivery went, stage by stage")
    parser.add_argument("--database-url", help="default: an embedded PostgreSQL in a temp dir")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary folder (database, server log)")
    parser.add_argument("--role", choices=("main", "subscribers"), default="main",
                        help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--skus", help=argparse.SUPPRESS)
    parsed = parser.parse_args()
    asyncio.run(subscribers_role(parsed) if parsed.role == "subscribers" else main(parsed))
