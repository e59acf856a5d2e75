"""`python -m benchmarks.refiner_placement`: the refiner in the web process, or as its own Ray Serve deployment.

The same refiner the app builds (the story sheet over the offline preset's tiny LLM, or the rules alone with
`--refiner none`) refines the same conversations, turn after turn, for W writers at once: in this process (as the app
runs it today), then on a Ray Serve deployment of it (W replicas, one CPU each) called through a deployment handle.
For each it reports the time per turn (median, p95), the CPU time this process spent per turn, and how late a thread
of this process that wakes every 5 ms woke (what the page's event loop would feel while turns are refined).
Not a test; the figures and the choice are in docs/DEPLOY.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

logger = logging.getLogger("benchmarks.refiner_placement")

Refine = Callable[[Any, Any], Any]  # (conversation, state) -> plan


class RefinerReplica:
    """A Ray Serve replica holding the refiner the app would build, refining one turn at a time."""

    def __init__(self, data_dir: str, refiner_model: str) -> None:
        from illustrator.models import load_refiner_for, sheet_refiner

        self.refiner = sheet_refiner(load_refiner_for(_settings(Path(data_dir), refiner_model), []))

    def refine(self, conversation: Any, state: Any) -> Any:
        return self.refiner.refine(conversation, state)


def _settings(data_dir: Path, refiner_model: str) -> Any:
    from illustrator.settings import Settings

    return Settings(data_dir=data_dir, offline=refiner_model == "offline", refiner_model=refiner_model)


def _writer(number: int, turns: int, refine: Refine, seconds: list[float], lock: threading.Lock) -> None:
    """One writer's conversation, refined turn after turn as the service does (the sheet carried along)."""
    from illustrator.plan import ChatMessage, RefinerState

    conversation: list[ChatMessage] = []
    state = RefinerState()
    for turn in range(1, turns + 1):
        text = f"writer {number} turn {turn}: a lighthouse keeper's cat on the rocks" + (", at dusk" * (turn > 1))
        conversation.append(ChatMessage("user", text))
        started = time.perf_counter()
        plan = refine(list(conversation), state)
        took = time.perf_counter() - started
        with lock:
            seconds.append(took)
        conversation.append(ChatMessage("assistant", plan.reply))
        state = RefinerState(
            last_prompt=plan.prompt, last_negative_prompt=plan.negative_prompt, has_picture=True, sheet=plan.sheet
        )


@contextmanager
def _lag_probe() -> Iterator[list[float]]:
    """A thread of this process that asks to wake every 5 ms; yields how late it woke, each time."""
    lags: list[float] = []
    stop = threading.Event()

    def probe() -> None:
        while not stop.is_set():
            started = time.perf_counter()
            time.sleep(0.005)
            lags.append(time.perf_counter() - started - 0.005)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    try:
        yield lags
    finally:
        stop.set()
        thread.join()


def measure(refine: Refine, writers: int, turns: int) -> dict[str, Any]:
    """W writers at once, T turns each, through `refine`: time per turn, this process's CPU per turn, wake-up lag."""
    seconds: list[float] = []
    lock = threading.Lock()
    cpu = time.process_time()
    started = time.perf_counter()
    with _lag_probe() as lags, ThreadPoolExecutor(writers) as pool:
        for future in [pool.submit(_writer, n, turns, refine, seconds, lock) for n in range(writers)]:
            future.result()
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu
    seconds.sort()
    lags.sort()
    return {
        "writers": writers,
        "turns": len(seconds),
        "turn_p50_s": round(statistics.median(seconds), 4),
        "turn_p95_s": round(_percentile(seconds, 0.95), 4),
        "web_cpu_per_turn_s": round(cpu / len(seconds), 4),
        "wake_lag_p50_ms": round(1000 * statistics.median(lags), 2),
        "wake_lag_p95_ms": round(1000 * _percentile(lags, 0.95), 2),
        "wall_s": round(wall, 2),
        "turns_per_s": round(len(seconds) / wall, 2),
    }


def _percentile(values: list[float], fraction: float) -> float:
    return values[min(len(values) - 1, int(round(fraction * (len(values) - 1))))]


def run(args: argparse.Namespace) -> dict[str, Any]:
    import ray
    from ray import serve

    from illustrator.models import load_refiner_for, sheet_refiner

    results: dict[str, Any] = {"refiner": args.refiner, "cores": os.cpu_count(), "load_average_before": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="illustrator-placement-") as folder:
        # 1. in the web process, as the app runs it (this also builds the preset once for the replicas)
        refiner = sheet_refiner(load_refiner_for(_settings(Path(folder), args.refiner), []))
        _writer(99, 2, refiner.refine, [], threading.Lock())  # warm-up: first calls load kernels and caches
        results["in_process"] = [measure(refiner.refine, w, args.turns) for w in args.writers]

        # 2. as its own Serve deployment, one replica per writer, one CPU each
        ray.init(num_cpus=max(args.writers), include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
        try:
            serve.start(http_options={"location": "NoServer"})
            results["deployment"] = []
            for writers in args.writers:
                deployment: Any = serve.deployment(RefinerReplica).options(
                    name="Refiner", num_replicas=writers, max_ongoing_requests=1, ray_actor_options={"num_cpus": 1}
                )
                handle = serve.run(deployment.bind(folder, args.refiner), name="placement", route_prefix=None)
                remote: Refine = lambda conversation, state: handle.refine.remote(conversation, state).result()  # noqa: E731, B023
                for n in range(writers):  # warm every replica
                    _writer(90 + n, 1, remote, [], threading.Lock())
                results["deployment"].append(measure(remote, writers, args.turns))
                serve.delete("placement")
        finally:
            serve.shutdown()
            ray.shutdown()
    results["load_average_after"] = os.getloadavg()
    return results


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as `illustrator serve` sets it
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="benchmarks.refiner_placement", description=__doc__.splitlines()[0])
    parser.add_argument("--refiner", default="offline", help="offline (the preset's tiny LLM) or none (the rules)")
    parser.add_argument("--turns", type=int, default=6, help="turns per writer (default: 6)")
    parser.add_argument("--writers", type=int, nargs="+", default=[1, 2], help="writers at once (default: 1 2)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/refiner-placement.json"))
    args = parser.parse_args(argv)
    result = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
