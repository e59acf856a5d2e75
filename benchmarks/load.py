"""`python -m benchmarks.load`: a bounded load test of a writing group (not a test; see docs/DEPLOY.md).

N simulated writers, each a gradio_client Client (its own browser session, so its own chat session), send T turns
each at the same time to the real app on loopback, drawing on the Ray backend (a local Ray cluster, the offline
preset's tiny models on R replicas) with the data in PostgreSQL (a throwaway server started here unless
--database-url is given). It reports p50/p95 turn latency, the time turns waited in the queue and the longest queue
seen, errors, HTTP 500s and turns saved into the wrong session, and writes the figures as JSON.
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
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger("benchmarks.load")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="benchmarks.load", description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=10, help="simulated writers at once (default: 10)")
    parser.add_argument("--turns", type=int, default=3, help="turns per writer (default: 3)")
    parser.add_argument("--replicas", type=int, default=2, help="image model replicas on Ray (default: 2)")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray cluster (default: 2)")
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL (default: a throwaway local server)")
    parser.add_argument("--queue-size", type=int, default=64, help="the app's turn queue (default: 64)")
    parser.add_argument(
        "--turns-at-once", type=int, default=None, help="turns the queue runs at once (default: one per replica)"
    )
    parser.add_argument("--refiner", default="offline", help="the refiner: offline (the tiny preset LLM) or none")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/load.json"))
    return parser


@dataclass
class Figures:
    """What one load run saw."""

    writers: int
    turns_per_writer: int
    replicas: int
    turns_at_once: int = 1
    latencies_s: list[float] = field(default_factory=list)
    waits_s: list[float] = field(default_factory=list)  # sent -> the turn's first update (its handler started)
    max_queue: int = 0  # the longest queue a waiting turn was told of
    errors: list[str] = field(default_factory=list)
    http_500s: int = 0
    wrong_session_turns: int = 0
    wall_s: float = 0.0
    start_up_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def summary(self) -> dict[str, Any]:
        done, waits = sorted(self.latencies_s), sorted(self.waits_s)
        return {
            "writers": self.writers,
            "turns_per_writer": self.turns_per_writer,
            "replicas": self.replicas,
            "turns_at_once": self.turns_at_once,
            "turns_done": len(done),
            "p50_s": _round(statistics.median(done) if done else None),
            "p95_s": _round(_percentile(done, 0.95)),
            "max_s": _round(done[-1] if done else None),
            "wait_p50_s": _round(statistics.median(waits) if waits else None),
            "wait_max_s": _round(waits[-1] if waits else None),
            "max_queue": self.max_queue,
            "errors": len(self.errors),
            "http_500s": self.http_500s,
            "wrong_session_turns": self.wrong_session_turns,
            "wall_s": round(self.wall_s, 1),
            "turns_per_s": round(len(done) / self.wall_s, 3) if self.wall_s else None,
            "start_up_s": round(self.start_up_s, 1),
        }


def _percentile(values: list[float], fraction: float) -> float | None:
    """The nearest-rank percentile of sorted `values`."""
    return values[min(len(values) - 1, int(round(fraction * (len(values) - 1))))] if values else None


def _round(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None


@contextmanager
def _postgres(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    from tests.postgres import find_programs, fresh_database, running_server

    programs = find_programs()
    if programs is None:
        raise SystemExit("PostgreSQL is not installed: run `make postgres`, or pass --database-url.")
    with running_server(programs) as server, fresh_database(server) as database:
        yield database


POLL_S = 0.1  # how often a waiting writer looks at its turn (the turns take seconds)
CONNECT_TIMEOUT_S = 300.0  # httpx's default (5 s) was too short for 50 clients starting at once at a load of 20


def _turn(client: Any, text: str) -> tuple[Any, float, float, int]:
    """Send one turn and wait for it: (its answer, seconds in all, seconds before it started, longest queue seen)."""
    from tests.app.client import value

    started = time.perf_counter()
    job = client.submit(text=text, api_name="/send")
    began: float | None = None
    queue = 0
    while not job.done():
        if began is None and job.outputs():  # the turn's first update: the writer's message, shown as it starts
            began = time.perf_counter()
        queue = max(queue, job.status().queue_size or 0)
        time.sleep(POLL_S)
    chat, picture, details, session, message = job.result()
    finished = time.perf_counter()
    return (chat, picture, details, value(session), message), finished - started, (began or finished) - started, queue


def _writer(url: str, number: int, turns: int, figures: Figures) -> str | None:
    """One writer: `turns` turns in their own session; returns that session's id."""
    import httpx
    from gradio_client import Client

    try:  # 50 clients asking for the API's description at once, on a loaded machine: give them time
        client = Client(url, verbose=False, httpx_kwargs={"timeout": CONNECT_TIMEOUT_S})
    except Exception as e:  # noqa: BLE001 - counted as an error of each of this writer's turns
        with figures.lock:
            figures.errors += [f"writer {number} turn {t}: could not connect: {type(e).__name__}" for t in range(turns)]
        return None
    session_id: str | None = None
    for turn in range(1, turns + 1):
        text = f"writer {number} turn {turn}: a lighthouse keeper's cat on the rocks" + (", at dusk" * (turn > 1))
        try:
            answer, seconds, waited, queue = _turn(client, text)
        except httpx.HTTPStatusError as e:
            with figures.lock:
                figures.http_500s += e.response.status_code >= 500
                figures.errors.append(f"writer {number} turn {turn}: HTTP {e.response.status_code}")
            continue
        except Exception as e:  # noqa: BLE001 - gradio_client's AppError/QueueError: counted, the writer goes on
            with figures.lock:
                figures.http_500s += " 500" in str(e)
                figures.errors.append(f"writer {number} turn {turn}: {type(e).__name__}: {e}")
            continue
        shown_session = answer[3]
        with figures.lock:
            figures.latencies_s.append(seconds)
            figures.waits_s.append(waited)
            figures.max_queue = max(figures.max_queue, queue)
            if session_id is not None and shown_session != session_id:
                figures.wrong_session_turns += 1
        session_id = session_id or shown_session
    return session_id


def drive(url: str, figures: Figures) -> dict[int, str | None]:
    """All writers at once against the app at `url`; fills `figures`; returns each writer's session id."""
    started = time.perf_counter()
    with ThreadPoolExecutor(figures.writers) as pool:
        futures = {n: pool.submit(_writer, url, n, figures.turns_per_writer, figures) for n in range(figures.writers)}
        sessions = {n: f.result(timeout=3600) for n, f in futures.items()}
    figures.wall_s = time.perf_counter() - started
    return sessions


def count_misplaced(db_url: str, sessions: dict[int, str | None]) -> int:
    """Turns stored in a session that is not their writer's (each message names its writer)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url)
    misplaced = 0
    try:
        with engine.connect() as conn:
            for number, session_id in sessions.items():
                rows = conn.execute(
                    text("SELECT content FROM messages WHERE session_id = :s AND role = 'user'"), {"s": session_id}
                ).scalars()
                misplaced += sum(not content.startswith(f"writer {number} turn ") for content in rows)
            everywhere = conn.execute(text("SELECT session_id, content FROM messages WHERE role = 'user'")).all()
            owner = {s: n for n, s in sessions.items()}
            for session_id, content in everywhere:
                number = owner.get(session_id)
                misplaced += number is None or not content.startswith(f"writer {number} turn ")
    finally:
        engine.dispose()
    return misplaced


class RefinerFailures(logging.Handler):
    """Counts the refiner's failures while generating: a turn falls back to the rules then, so no error shows."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += record.name.startswith("illustrator.refin") and record.exc_info is not None


def run(args: argparse.Namespace) -> dict[str, Any]:
    import ray

    from illustrator.settings import Settings
    from illustrator.wiring import wire
    from tests.app.conftest import free_port
    from ui.server import launch

    with ExitStack() as stack:
        db_url = stack.enter_context(_postgres(args.database_url))
        data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="illustrator-load-")))
        os.environ["GRADIO_TEMP_DIR"] = str(data_dir / "gradio-tmp")
        started = time.perf_counter()
        ray.init(num_cpus=args.cpus, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
        stack.callback(ray.shutdown)
        settings = Settings(
            data_dir=data_dir,
            offline=True,
            refiner_model=args.refiner,
            database_url=db_url,
            port=free_port(),
            queue_size=args.queue_size,
            backend="ray",
            ray_address="local",
            ray_replicas=args.replicas,
            turns_at_once=args.turns_at_once,
        )
        figures = Figures(args.writers, args.turns, args.replicas, settings.turn_concurrency)
        illustrator = wire(settings)
        status = illustrator.models.wait(timeout=900)
        logger.info("Models: %s", status.summary)
        served = launch(illustrator, prevent_thread_lock=True, quiet=True)
        stack.callback(served.close)
        figures.start_up_s = time.perf_counter() - started
        load_before = os.getloadavg()
        failures = RefinerFailures()
        logging.getLogger().addHandler(failures)
        sessions = drive(f"http://127.0.0.1:{settings.port}/", figures)
        logging.getLogger().removeHandler(failures)
        figures.wrong_session_turns += count_misplaced(db_url, sessions)
    return {
        **figures.summary(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "refiner_failures": failures.count,  # the LLM raised while generating (the rules answered instead)
        "error_samples": figures.errors[:5],
        "latencies_s": figures.latencies_s,
        "waits_s": figures.waits_s,
    }


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    result = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k not in ("latencies_s", "waits_s")}, indent=2))
    return 0 if not result["errors"] and not result["http_500s"] and not result["wrong_session_turns"] else 1


if __name__ == "__main__":
    sys.exit(main())
