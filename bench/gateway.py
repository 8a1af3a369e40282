"""One gateway process alone, saturated with signed Twilio webhooks: requests per second and
CPU per webhook (PostgreSQL and Redis real, no worker, so nothing else competes for the CPU).

    .venv/bin/python bench/gateway.py [--clients 16] [--seconds 4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.load import bare_ceiling, saturate, train_model
from bench.stack import (
    PG_ADMIN_URL,
    REPO,
    RedisServer,
    Stack,
    create_database,
    drop_database,
    new_sid,
    process_cpu,
    twilio_request,
)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    model = REPO / "var" / "nlu" / "model.pkl"
    train_model(model)
    ceiling = await bare_ceiling(args.seconds, args.clients)
    print(f"bare ASGI endpoint (baseline): {ceiling:.0f} req/s")
    url = await create_database(PG_ADMIN_URL)
    redis = RedisServer().start()
    stack = Stack(url, redis.url, nlu_model_path=model, workers=0)
    try:
        await asyncio.to_thread(stack.start)
        target = stack.base + "/channels/sms/twilio"

        def request() -> tuple[str, bytes, dict[str, str]]:
            sender = f"+3368{random.randrange(10**7):07d}"
            return twilio_request(stack.base, sender, "bonjour", new_sid())

        await saturate(target, request, 2, args.clients)  # warm-up
        pid = stack.procs["gateway"].pid
        for _ in range(args.rounds):
            cpu, started = process_cpu(pid), time.perf_counter()
            rps = await saturate(target, request, args.seconds, args.clients)
            used = process_cpu(pid) - cpu
            count = rps * (time.perf_counter() - started)
            print(
                f"gateway: {rps:.0f} webhooks/s ({rps / ceiling:.0%} of the baseline), "
                f"{used * 1000 / count:.2f} ms CPU per webhook"
            )
    finally:
        stack.stop()
        redis.stop()
        await drop_database(url, PG_ADMIN_URL)


if __name__ == "__main__":
    asyncio.run(main())
