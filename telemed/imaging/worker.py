"""Reading, decoding and rendering DICOM in worker processes with limits.

A worker is a separate Python process (``python -m telemed.imaging.worker``) that sets its
own address-space limit and, before each task, a CPU-time limit (``resource.setrlimit``).
The server talks to it over pipes, one JSON line per request and answer, and waits at
most ``timeout`` seconds; a worker that runs out of memory, exceeds its CPU time, dies or
is late is killed and replaced, and the caller gets :class:`WorkerFailed` naming why. So a
hostile file costs one worker, never the server's memory or threads.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import select
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

# What stopped a worker, as templates: a refusal quotes them (services/cases/dicom.py).
FAILED_TIME = "took longer than {seconds} s"
FAILED_CPU = "exceeded its CPU time"
FAILED_ENDED = "ended unexpectedly (exit status {code})"
FAILED_MEMORY = "needed more than its {megabytes} MB memory limit"


class WorkerFailed(Exception):
    """The worker could not finish the task (limits, crash); the message says which."""


class TaskError(Exception):
    """The task itself refused or failed (``kind`` is ``refused`` or ``error``)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class WorkerLimits:
    memory_bytes: int = 2 * 1024**3
    cpu_seconds: int = 20
    timeout_seconds: float = 30.0


# -- the worker side -------------------------------------------------------------------------


def _apply_memory_limit(memory_bytes: int) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _cpu_budget(seconds: int) -> None:
    """Allow ``seconds`` more CPU time from now (RLIMIT_CPU counts the process's total)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = int(usage.ru_utime + usage.ru_stime) + 1
    _soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    limit = used + seconds
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (limit, hard))


def _task(op: str, args: dict[str, Any]) -> dict[str, Any]:
    if op == "inspect":
        from telemed.imaging.reading import Limits, inspect

        return inspect(args["path"], Limits(**args.get("limits", {})))
    if op == "render":
        from telemed.imaging.rendering import RenderRequest, Window, render

        window = args.get("window")
        request = RenderRequest(
            frame=args.get("frame", 0),
            media_type=args.get("media_type", "image/png"),
            window=Window(**window) if window else None,
            quality=args.get("quality", 90),
            viewport=tuple(args["viewport"]) if args.get("viewport") else None,
        )
        data = render(args["path"], request)
        temp = args["out"] + ".part"
        with open(temp, "wb") as handle:
            handle.write(data)
        os.replace(temp, args["out"])
        return {"bytes": len(data)}
    if op == "transcode":
        from telemed.imaging.pixel_data import transcode_to_explicit_little

        temp = args["out"] + ".part"
        transcode_to_explicit_little(args["path"], temp)
        os.replace(temp, args["out"])
        return {}
    if op == "frames":
        from telemed.imaging.pixel_data import extract_frames

        return extract_frames(args["path"], args["out"], args["form"])
    if op == "element":
        from telemed.imaging.pixel_data import extract_element

        return extract_element(args["path"], args["tag"], args["out"])
    if op == "ecg_read":
        from telemed.imaging.ecg_reading import read_and_normalise

        files = [tuple(f) for f in args["files"]]
        return read_and_normalise(files, args["out"], locale=args.get("locale"))
    if op == "deidentify":
        from pathlib import Path

        from telemed.imaging.deidentify import UidMap, deidentify_file

        temp = args["out"] + ".part"
        uids = UidMap(bytes.fromhex(args["secret"]))
        deidentify_file(
            Path(args["path"]),
            Path(temp),
            uids,
            args["pseudonym"],
            retain_dates=bool(args.get("retain_dates")),
        )
        os.replace(temp, args["out"])
        return {}
    if op == "ping":
        return {"pid": os.getpid()}
    if op == "allocate":  # for tests of the limits: try to hold this many bytes
        block = bytearray(int(args["bytes"]))
        return {"held": len(block)}
    if op == "spin":  # for tests of the limits: burn CPU
        end = time.monotonic() + float(args["seconds"])
        while time.monotonic() < end:
            pass
        return {}
    raise ValueError(f"unknown operation {op!r}")


def main() -> None:
    memory_bytes, cpu_seconds = int(sys.argv[1]), int(sys.argv[2])
    _apply_memory_limit(memory_bytes)
    # Import the libraries once, under the limit, before the first task.
    import numpy  # noqa: F401
    import pydicom  # noqa: F401

    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    for line in stdin:
        request = json.loads(line)
        _cpu_budget(cpu_seconds)
        try:
            answer = {"ok": _task(request["op"], request.get("args", {}))}
        except MemoryError:
            answer = {"failed": "memory"}
        except Exception as error:
            from telemed.imaging.reading import Refused

            kind = "refused" if isinstance(error, Refused) else "error"
            answer = {kind: str(error) or type(error).__name__}
        stdout.write(json.dumps(answer).encode() + b"\n")
        stdout.flush()
        if "failed" in answer:
            return  # a process that hit its memory limit starts afresh


# -- the server side -------------------------------------------------------------------------


class _Worker:
    def __init__(self, limits: WorkerLimits) -> None:
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
        # The command is this interpreter and this module: no outside input reaches it.
        self.process = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "telemed.imaging.worker",
                str(limits.memory_bytes),
                str(limits.cpu_seconds),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            close_fds=True,
        )
        self.buffer = b""

    def call(self, op: str, args: dict[str, Any], timeout: float) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps({"op": op, "args": args}).encode() + b"\n")
        self.process.stdin.flush()
        deadline = time.monotonic() + timeout
        fd = self.process.stdout.fileno()
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise WorkerFailed(FAILED_TIME.format(seconds=f"{timeout:.0f}"))
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                code = self.process.wait()
                raise WorkerFailed(
                    FAILED_CPU if code in (-24, -9) else FAILED_ENDED.format(code=code)
                )
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return json.loads(line)

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()


class WorkerPool:
    """At most ``size`` workers; a caller borrows one for one task."""

    def __init__(self, limits: WorkerLimits, size: int = 2) -> None:
        self.limits = limits
        self.size = size
        self.idle: queue.LifoQueue[_Worker] = queue.LifoQueue()
        self.slots = threading.BoundedSemaphore(size)
        self.all: set[_Worker] = set()
        self.lock = threading.Lock()

    def call(self, op: str, timeout: float | None = None, **args: Any) -> dict[str, Any]:
        timeout = timeout or self.limits.timeout_seconds
        with self.slots:
            try:
                worker = self.idle.get_nowait()
            except queue.Empty:
                worker = _Worker(self.limits)
                with self.lock:
                    self.all.add(worker)
            try:
                answer = worker.call(op, args, timeout)
            except BaseException:
                self._discard(worker)
                raise
            if "failed" in answer:
                self._discard(worker)
                raise WorkerFailed(
                    FAILED_MEMORY.format(megabytes=self.limits.memory_bytes // 1024**2)
                )
            self.idle.put(worker)
        if "ok" in answer:
            return answer["ok"]
        kind = "refused" if "refused" in answer else "error"
        raise TaskError(kind, answer[kind])

    def _discard(self, worker: _Worker) -> None:
        worker.kill()
        with self.lock:
            self.all.discard(worker)

    def close(self) -> None:
        with self.lock:
            workers, self.all = list(self.all), set()
        for worker in workers:
            worker.kill()
        while not self.idle.empty():
            self.idle.get_nowait()


_pools: dict[tuple, WorkerPool] = {}
_pools_lock = threading.Lock()


def pool_for(limits: WorkerLimits, size: int = 2) -> WorkerPool:
    """One pool per set of limits in this process, shared by every app instance."""
    key = (*asdict(limits).values(), size)
    with _pools_lock:
        pool = _pools.get(key)
        if pool is None:
            pool = _pools[key] = WorkerPool(limits, size)
        return pool


@atexit.register
def _close_all() -> None:
    for pool in list(_pools.values()):
        pool.close()


if __name__ == "__main__":
    main()
