"""`python -m benchmarks.load`: a bounded load test of a writing group (not a test; see docs/DEPLOY.md).

N simulated writers, each a gradio_client Client (its own browser session, so its own chat session), send T turns
each at the same time to the real app on loopback, drawing on the Ray backend (a local Ray cluster, the offline
preset's tiny models on R replicas) with the data in PostgreSQL (a throwaway server started here unless
--database-url is given). It reports p50/p95 turn latency, errors, HTTP 500s and turns saved into the wrong session,
and writes the figures as JSON.
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
    parser.add_argument("--refiner", default="offline", help="the refiner: offline (the tiny preset LLM) or none")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/load.json"))
    return parser


@dataclass
class Figures:
    """What one load run saw."""

    writers: int
    turns_per_writer: int
    replicas: int
    latencies_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    http_500s: int = 0
    wrong_session_turns: int = 0
    wall_s: float = 0.0
    start_up_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        done = sorted(self.latencies_s)
        p95 = done[min(len(done) - 1, int(round(0.95 * (len(done) - 1))))] if done else None
        return {
            "writers": self.writers,
            "turns_per_writer": self.turns_per_writer,
            "replicas": self.replicas,
            "turns_done": len(done),
            "p50_s": round(statistics.median(done), 3) if done else None,
            "p95_s": round(p95, 3) if p95 is not None else None,
            "max_s": round(done[-1], 3) if done else None,
            "errors": len(self.errors),
            "http_500s": self.http_500s,
            "wrong_session_turns": self.wrong_session_turns,
            "wall_s": round(self.wall_s, 1),
            "turns_per_s": round(len(done) / self.wall_s, 3) if self.wall_s else None,
            "start_up_s": round(self.start_up_s, 1),
        }


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


def _writer(url: str, number: int, turns: int, figures: Figures, lock: threading.Lock) -> str | None:
    """One writer: `turns` turns in their own session; returns that session's id."""
    import httpx
    from gradio_client import Client

    from tests.app.client import send

    client = Client(url, verbose=False)
    session_id: str | None = None
    for turn in range(1, turns + 1):
        text = f"writer {number} turn {turn}: a lighthouse keeper's cat on the rocks" + (", at dusk" * (turn > 1))
        started = time.perf_counter()
        try:
            _, _, _, shown_session, _ = send(client, text)
        except httpx.HTTPStatusError as e:
            with lock:
                figures.http_500s += e.response.status_code >= 500
                figures.errors.append(f"writer {number} turn {turn}: HTTP {e.response.status_code}")
            continue
        except Exception as e:  # noqa: BLE001 - gradio_client's AppError/QueueError: counted, the writer goes on
            with lock:
                figures.http_500s += " 500" in str(e)
                figures.errors.append(f"writer {number} turn {turn}: {type(e).__name__}: {e}")
            continue
        seconds = time.perf_counter() - started
        with lock:
            figures.latencies_s.append(seconds)
            if session_id is not None and shown_session != session_id:
                figures.wrong_session_turns += 1
        session_id = session_id or shown_session
    return session_id


def _count_misplaced(db_url: str, sessions: dict[int, str | None], turns: int) -> int:
    """Turns stored in a session that is not their writer's (each message names its writer), or missing pictures."""
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


def run(args: argparse.Namespace) -> dict[str, Any]:
    import ray

    from illustrator.settings import Settings
    from illustrator.wiring import wire
    from tests.app.conftest import free_port
    from ui.server import launch

    figures = Figures(args.writers, args.turns, args.replicas)
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
        )
        illustrator = wire(settings)
        status = illustrator.models.wait(timeout=900)
        logger.info("Models: %s", status.summary)
        served = launch(illustrator, prevent_thread_lock=True, quiet=True)
        stack.callback(served.close)
        figures.start_up_s = time.perf_counter() - started
        url = f"http://127.0.0.1:{settings.port}/"

        lock = threading.Lock()
        started = time.perf_counter()
        with ThreadPoolExecutor(args.writers) as pool:
            futures = {n: pool.submit(_writer, url, n, args.turns, figures, lock) for n in range(args.writers)}
            sessions = {n: f.result(timeout=3600) for n, f in futures.items()}
        figures.wall_s = time.perf_counter() - started
        figures.wrong_session_turns += _count_misplaced(db_url, sessions, args.turns)
    return {**figures.summary(), "error_samples": figures.errors[:5], "latencies_s": figures.latencies_s}


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    result = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k != "latencies_s"}, indent=2))
    return 0 if not result["errors"] and not result["http_500s"] and not result["wrong_session_turns"] else 1


if __name__ == "__main__":
    sys.exit(main())
