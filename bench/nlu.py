"""NLU benchmark: embedded engine vs a Rasa server on the held-out messages (prints figures)."""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nlu.cli import emergency_scores
from nlu.embedded import EmbeddedEngine
from nlu.paths import default_data_dir, default_model_path
from nlu.training import ensure_model, grouped_macro_f1, load_dev_data, load_test_data
from nlu.types import Parse

ROUNDS = int(os.environ.get("RELAIS_BENCH_ROUNDS", "20"))


_MEMORY_PROBE = """
import sys
from pathlib import Path
def rss():
    with open("/proc/self/status") as fh:
        return next(int(l.split()[1]) for l in fh if l.startswith("VmRSS:")) / 1024
from nlu.embedded import EmbeddedEngine
before = rss()
engine = EmbeddedEngine.load(Path(sys.argv[1]))
engine.parse_sync("ya une fuite ds la sdb")
print(f"{rss() - before:.1f} {rss():.0f}")
"""


def resident_memory(model_path: Path) -> str:
    """Measure in a fresh process: this one has already trained and holds the garbage of it."""
    out = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, str(model_path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    ).stdout.split()
    size = model_path.stat().st_size / 1e6
    return (
        f"embedded model resident: {out[0]} MB after imports (process {out[1]} MB), "
        f"artifact {size:.1f} MB"
    )


async def measure(
    parse: Callable[[str], Awaitable[Parse]], texts: list[str], rounds: int
) -> dict[str, float]:
    for text in texts[:20]:
        await parse(text)  # warm up
    latencies: list[float] = []
    # CPU time as well as wall time: on a shared machine the wall clock also counts the time
    # other processes held the CPU.
    cpu_started = time.process_time()
    started = time.perf_counter()
    for _ in range(rounds):
        for text in texts:
            t0 = time.perf_counter()
            await parse(text)
            latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    latencies.sort()
    return {
        "per_s": len(latencies) / elapsed,
        "per_cpu_s": len(latencies) / cpu if cpu > 0 else 0.0,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "n": len(latencies),
    }


Quality = tuple[float, int, int, int]


async def accuracy(
    parse: Callable[[str], Awaitable[Parse]], texts: list[str], labels: list[str]
) -> Quality:
    """(grouped macro-F1, emergencies found, emergencies there are, emergency calls made)."""
    predicted = [(await parse(t)).intent for t in texts]
    return (grouped_macro_f1(labels, predicted), *emergency_scores(labels, predicted))


def show(name: str, figures: dict[str, float], test: Quality, dev: Quality) -> None:
    # Emergency recall first, as in every evaluation Relais prints; then speed.
    for label, (f1, found, there, called) in (("test", test), ("dev", dev)):
        print(
            f"{name:9} {label:4} emergency recall {found}/{there}, precision {found}/{called}, "
            f"macro-F1 (topics + other) {f1:.3f}"
        )
    # This process's CPU time only means something for the in-process engine.
    cpu = f", {figures['per_cpu_s']:6.0f} per CPU-s" if name == "embedded" else ""
    print(
        f"{name:9} {figures['per_s']:6.0f} parses/s wall{cpu}   "
        f"p50 {figures['p50_ms']:7.3f} ms   p99 {figures['p99_ms']:7.3f} ms   "
        f"({int(figures['n'])} parses)"
    )


async def rasa_reachable(url: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=2.0) as client:
            response = await client.get(url.rstrip("/") + "/status")
            return response.status_code < 500
    except httpx.HTTPError:
        return False


async def main() -> None:
    data_dir = default_data_dir()
    model_path = default_model_path()
    t0 = time.perf_counter()
    trained = ensure_model(data_dir, model_path)
    state = f"trained in {time.perf_counter() - t0:.1f}s" if trained else "up to date"
    print(f"model {model_path} ({state})")
    held_out = load_test_data(data_dir)
    dev = load_dev_data(data_dir)
    texts = held_out.texts + dev.texts
    load = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} CPUs, load average {load:.1f} (figures are noisy above ~1)")
    print(
        f"messages: {len(held_out.texts)} held-out (data/nlu_test.yml) + {len(dev.texts)} dev "
        f"(data/nlu_dev.yml), {ROUNDS} rounds embedded, 1 rasa"
    )
    print(resident_memory(model_path))
    embedded = EmbeddedEngine.load(model_path)
    emb = await measure(embedded.parse, texts, ROUNDS)
    emb_test = await accuracy(embedded.parse, held_out.texts, held_out.labels)
    emb_dev = await accuracy(embedded.parse, dev.texts, dev.labels)
    show("embedded", emb, emb_test, emb_dev)

    url = os.environ.get("RELAIS_RASA_URL", "http://127.0.0.1:5005")
    if not await rasa_reachable(url):
        print(f"rasa      no server answers at {url}; start one with `scripts/rasa-server up`")
        return
    from nlu.rasa import RasaEngine

    rasa = RasaEngine(url)
    try:
        ras = await measure(rasa.parse, texts, 1)
        ras_test = await accuracy(rasa.parse, held_out.texts, held_out.labels)
        ras_dev = await accuracy(rasa.parse, dev.texts, dev.labels)
    finally:
        await rasa.aclose()
    show("rasa", ras, ras_test, ras_dev)
    print(
        f"ratio     embedded/rasa throughput x{emb['per_s'] / ras['per_s']:.1f}, "
        f"p99 latency /{ras['p99_ms'] / emb['p99_ms']:.1f}, "
        f"macro-F1 test {emb_test[0] - ras_test[0]:+.3f}, dev {emb_dev[0] - ras_dev[0]:+.3f}"
    )


if __name__ == "__main__":
    asyncio.run(main())
