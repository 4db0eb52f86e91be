"""DICOM ingest and rendering, side by side with the floor and with Orthanc.

    .venv/bin/python bench/ingest.py [--slices 500] [--big-mb 1024] [--no-orthanc]

Figures printed (and meant for docs/performance.md, "Ingest and rendering"):

* ingest of a CT series (512×512 slices made from the real CT_small.dcm, upsampled, new
  UIDs, varied pixel data) through the app: STOW-RS one file per request and in batches;
  files/s and MB/s, beside copying and hashing the same files (the floor) and the ratio;
* peak RSS of the server process (and of its decoding workers) during a 1 GB tus upload;
* rendered-frame latency, cold (first render) and warm (render cache), for a CT slice and
  for a multi-frame file (the 30-frame colour cine examples_ybr_color.dcm);
* Orthanc (Debian's orthanc + orthanc-dicomweb) on the same files: REST ingest
  (POST /instances) right after each of our STOW phases on the same files,
  /instances/<id>/preview, DICOMweb QIDO and metadata; ours beside it;
* C-STORE of a second 500-slice series with dcmtk's storescu (one association, Nagle
  off) into our DICOM node (the listener ``flask serve`` runs) and into Orthanc's (128 KB
  PDUs and Nagle off, as ours), one after the other.

Everything runs in a private network namespace (``unshare -n``, loopback only), so
Orthanc, which binds every interface, is reachable from nowhere else. Orthanc is skipped
with a message when its packages are not installed (``apt-get install orthanc
orthanc-dicomweb``; ``--install-orthanc`` does it). Bounded: each phase has a fixed
number of requests and a timeout; the servers are stopped at the end.
"""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SAMPLES = ROOT / "tests" / "data" / "dicom"
ORTHANC_PLUGINS = Path("/usr/share/orthanc/plugins")
CHUNK = 32 * 1024 * 1024


# -- data ------------------------------------------------------------------------------------


def make_ct_series(folder: Path, count: int) -> list[Path]:
    import numpy as np
    import pydicom
    from pydicom.uid import generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    base = pydicom.dcmread(SAMPLES / "CT_small.dcm")
    pixels = np.kron(base.pixel_array.astype(np.int32), np.ones((4, 4), dtype=np.int32))
    rng = np.random.default_rng(7)
    study, series = generate_uid(), generate_uid()
    paths = []
    for number in range(1, count + 1):
        ds = copy.deepcopy(base)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber, ds.SeriesNumber = number, 1
        ds.Rows, ds.Columns = pixels.shape
        ds.PixelSpacing = [float(v) / 4 for v in base.PixelSpacing]
        ds.ImagePositionPatient = [0.0, 0.0, float(number)]
        ds.SliceLocation = float(number)
        varied = pixels + rng.integers(-20, 20, size=pixels.shape) + (number % 50)
        ds.PixelData = np.clip(varied, -2000, 4000).astype(np.int16).tobytes()
        path = folder / f"ct_{number:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def make_big_multiframe(path: Path, megabytes: int) -> Path:
    """A multi-frame CT of about ``megabytes`` MB (512×512×16-bit frames), written in
    streaming fashion: header with pydicom, then the frames appended."""
    import numpy as np
    import pydicom
    from pydicom.uid import generate_uid

    base = pydicom.dcmread(SAMPLES / "CT_small.dcm")
    frame = np.kron(base.pixel_array.astype(np.int16), np.ones((4, 4), dtype=np.int16))
    frames = max(1, megabytes * 1024 * 1024 // frame.nbytes)
    ds = copy.deepcopy(base)
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.Rows, ds.Columns = frame.shape
    ds.NumberOfFrames = frames
    ds.PixelData = b""
    del ds.PixelData
    ds.save_as(path, enforce_file_format=True)
    with open(path, "ab") as out:
        length = frames * frame.nbytes
        out.write(b"\xe0\x7f\x10\x00OW\x00\x00" + length.to_bytes(4, "little"))
        raw = frame.tobytes()
        for _ in range(frames):
            out.write(raw)
    return path


# -- helpers -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, timeout: float = 60.0) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return 0.0
    return 0.0


def children(pid: int) -> list[int]:
    """Child processes started by any thread of ``pid`` (workers start from request threads)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process (all its threads) has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """The server's CPU time over a phase, per file: unlike the rates, it does not move
    with what else runs on the machine."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def __enter__(self) -> CpuMeter:
        self.start = cpu_seconds(self.pid)
        return self

    def __exit__(self, *exc) -> None:
        self.used = cpu_seconds(self.pid) - self.start

    def per_file(self, files: int) -> str:
        return f"{self.used * 1000 / files:.2f} ms CPU/file"


class PeakSampler:
    """Peak RSS of a process (and, separately, of its children) while running."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0.0
        self.peak_children = 0.0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, rss_mb(self.pid))
            kids = sum(rss_mb(child) for child in children(self.pid))
            self.peak_children = max(self.peak_children, kids)
            time.sleep(0.05)

    def __enter__(self) -> PeakSampler:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()


def multipart(paths: list[Path], boundary: str) -> bytes:
    body = bytearray()
    for path in paths:
        body += f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        body += path.read_bytes() + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return bytes(body)


def timed(function, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1000)
    return times


def rate_line(label: str, files: int, megabytes: float, seconds: float, floor: float) -> None:
    rate = megabytes / seconds
    print(
        f"{label:<36} {files / seconds:8.1f} files/s {rate:8.1f} MB/s  "
        f"(floor ratio {rate / floor:.2f})"
    )


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


# -- floor -----------------------------------------------------------------------------------


def floor_copy_and_hash(paths: list[Path], target: Path) -> float:
    target.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    for path in paths:
        digest = hashlib.sha256()
        with open(path, "rb") as source, open(target / path.name, "wb") as out:
            while chunk := source.read(1024 * 1024):
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
    return time.perf_counter() - start


# -- ours ----------------------------------------------------------------------------------


class Telemed:
    def __init__(self, work: Path) -> None:
        import requests

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "bench" / "_ingest_server.py"),
                str(work),
                str(self.port),
                str(free_port()),
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while not (work / "server.json").exists():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("the telemed server did not start")
            time.sleep(0.2)
        info = json.loads((work / "server.json").read_text())
        wait_for(f"{self.url}/login")
        self.pid = self.process.pid
        self.cases = info["cases"]
        self.dicom_port = info["dicom_port"]
        self.dicom_ae, self.calling_ae = info["dicom_ae"], info["calling_ae"]
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {info['token']}"

    def root(self, case: int) -> str:
        return f"{self.url}/cases/{case}/dicomweb"

    def stow(self, case: int, paths: list[Path]) -> None:
        boundary = "benchboundary"
        response = self.session.post(
            f"{self.root(case)}/studies",
            data=multipart(paths, boundary),
            headers={
                "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}'
            },
            timeout=600,
        )
        if response.status_code != 200:
            raise RuntimeError(f"STOW answered {response.status_code}: {response.text[:300]}")

    def tus_upload(self, case: int, path: Path) -> None:
        size = path.stat().st_size
        meta = ",".join(
            f"{k} {base64.b64encode(v.encode()).decode()}"
            for k, v in {"filename": path.name, "case_id": str(case)}.items()
        )
        tus = {"Tus-Resumable": "1.0.0"}
        created = self.session.post(
            f"{self.url}/uploads",
            headers={**tus, "Upload-Length": str(size), "Upload-Metadata": meta},
            timeout=60,
        )
        created.raise_for_status()
        location = self.url + created.headers["Location"]
        offset = 0
        with open(path, "rb") as source:
            while offset < size:
                chunk = source.read(CHUNK)
                answer = self.session.patch(
                    location,
                    data=chunk,
                    headers={
                        **tus,
                        "Upload-Offset": str(offset),
                        "Content-Type": "application/offset+octet-stream",
                    },
                    timeout=600,
                )
                if answer.status_code != 204:
                    raise RuntimeError(f"PATCH answered {answer.status_code}: {answer.text[:300]}")
                offset = int(answer.headers["Upload-Offset"])

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# -- Orthanc --------------------------------------------------------------------------------


def orthanc_binary() -> str | None:
    return shutil.which("Orthanc")


class Orthanc:
    def __init__(self, work: Path) -> None:
        import requests

        self.port = free_port()
        self.dicom_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "Name": "bench",
            "StorageDirectory": str(work / "orthanc-storage"),
            "IndexDirectory": str(work / "orthanc-index"),
            "HttpPort": self.port,
            "DicomServerEnabled": True,
            "DicomPort": self.dicom_port,
            "DicomAet": "ORTHANC",
            "DicomAlwaysAllowStore": True,
            "DicomCheckCalledAet": False,
            # As our node: 128 KB PDUs, Nagle off (dcmtk reads TCP_NODELAY, set below).
            "MaximumPduLength": 131072,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "HttpCompressionEnabled": False,
            "StorageCompression": False,
            "Plugins": [str(ORTHANC_PLUGINS)],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
        }
        path = work / "orthanc.json"
        path.write_text(json.dumps(config))
        self.process = subprocess.Popen(
            [orthanc_binary(), str(path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=dict(os.environ, TCP_NODELAY="1"),
        )
        wait_for(f"{self.url}/system")
        self.session = requests.Session()
        plugins = self.session.get(f"{self.url}/plugins", timeout=10).json()
        self.dicomweb = "dicom-web" in plugins

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# -- the run ---------------------------------------------------------------------------------


def storescu(paths: list[Path], *, calling: str, called: str, port: int) -> float:
    """Send ``paths`` in one association with dcmtk's storescu; seconds taken. Nagle's
    algorithm off (``TCP_NODELAY=1``, as docs/imaging.md advises senders): with it, each
    C-STORE waits on the receiver's delayed ACK, whoever the receiver is."""
    command = [shutil.which("storescu") or "storescu", "-aet", calling, "-aec", called]
    command += ["127.0.0.1", str(port), *map(str, paths)]
    start = time.perf_counter()
    env = dict(os.environ, TCP_NODELAY="1")
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=900, check=False, env=env
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"storescu failed ({done.returncode}): {done.stderr[-500:]}")
    return elapsed


def ratio(ours: float, theirs: float | None) -> str:
    return f"{ours / theirs:.2f}" if theirs else "n/a"


def run(args: argparse.Namespace) -> None:
    import pydicom

    if os.environ.get("TELEMED_BENCH_NETNS") == "1":
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    work = Path(tempfile.mkdtemp(prefix="telemed-ingest-"))
    orthanc = None
    try:
        print(
            f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}, work folder {work}, "
            f"load average {os.getloadavg()[0]:.1f}"
        )
        series = make_ct_series(work / "series", args.slices)
        total_mb = sum(p.stat().st_size for p in series) / 1024**2
        print(f"CT series: {len(series)} slices 512×512, {total_mb:.1f} MB")
        sent = make_ct_series(work / "sent", args.slices) if shutil.which("storescu") else []

        floor_s = floor_copy_and_hash(series, work / "floor")
        floor_rate = total_mb / floor_s
        rate_line("floor (copy + sha256 + fsync)", len(series), total_mb, floor_s, floor_rate)

        if args.orthanc and orthanc_binary() is None:
            print("Orthanc: skipped (apt-get install orthanc orthanc-dicomweb)")
        elif args.orthanc:
            orthanc = Orthanc(work)

        def orthanc_rest(paths: list[Path]) -> tuple[float, list[str]]:
            assert orthanc is not None
            ids = []
            with CpuMeter(orthanc.process.pid) as meter:
                start = time.perf_counter()
                for path in paths:
                    answer = orthanc.session.post(
                        f"{orthanc.url}/instances", data=path.read_bytes(), timeout=120
                    )
                    answer.raise_for_status()
                    ids.append(answer.json()["ID"])
                elapsed = time.perf_counter() - start
            print(f"  (Orthanc REST, {len(paths)} files: {meter.per_file(len(paths))})")
            return elapsed, ids

        app = Telemed(work / "app")
        try:
            ingest_case, big_case, render_case = app.cases
            half = len(series) // 2
            # Each of ours next to Orthanc's on the same files, so both see the same load.
            with CpuMeter(app.pid) as one_cpu:
                start = time.perf_counter()
                for path in series[:half]:
                    app.stow(ingest_case, [path])
                one_s = time.perf_counter() - start
            one_mb = sum(p.stat().st_size for p in series[:half]) / 1024**2
            o_one_s, ids = orthanc_rest(series[:half]) if orthanc else (None, [])
            rest = series[half:]
            with CpuMeter(app.pid) as batch_cpu:
                start = time.perf_counter()
                for index in range(0, len(rest), args.batch):
                    app.stow(ingest_case, rest[index : index + args.batch])
                batch_s = time.perf_counter() - start
            batch_mb = sum(p.stat().st_size for p in rest) / 1024**2
            o_rest_s, more = orthanc_rest(rest) if orthanc else (None, [])
            ids += more
            rate_line("telemed STOW-RS, 1 file/request", half, one_mb, one_s, floor_rate)
            print(f"  (server {one_cpu.per_file(half)})")
            label = f"telemed STOW-RS, {args.batch} files/request"
            rate_line(label, len(rest), batch_mb, batch_s, floor_rate)
            print(f"  (server {batch_cpu.per_file(len(rest))})")
            if orthanc is not None:
                assert o_one_s is not None and o_rest_s is not None
                label = "Orthanc REST POST /instances"
                rate_line(label, len(series), total_mb, o_one_s + o_rest_s, floor_rate)
                print(
                    f"  ratios to Orthanc (files/s, same files): 1 file/request "
                    f"{ratio(o_one_s, one_s)}, {args.batch} files/request "
                    f"{ratio(o_rest_s, batch_s)}"
                )

            if sent:
                sent_mb = sum(p.stat().st_size for p in sent) / 1024**2
                with CpuMeter(app.pid) as ours_cpu:
                    ours_s = storescu(
                        sent, calling=app.calling_ae, called=app.dicom_ae, port=app.dicom_port
                    )
                rate_line(
                    "telemed DICOM node, storescu C-STORE", len(sent), sent_mb, ours_s, floor_rate
                )
                print(f"  (server {ours_cpu.per_file(len(sent))})")
                if orthanc is not None:
                    with CpuMeter(orthanc.process.pid) as theirs_cpu:
                        theirs_s = storescu(
                            sent, calling="BENCH", called="ORTHANC", port=orthanc.dicom_port
                        )
                    rate_line("Orthanc, storescu C-STORE", len(sent), sent_mb, theirs_s, floor_rate)
                    print(f"  (Orthanc {theirs_cpu.per_file(len(sent))})")
                    print(f"  ratio to Orthanc (C-STORE, files/s): {ratio(theirs_s, ours_s)}")

            # Rendering: a CT slice and a multi-frame cine.
            app.stow(render_case, [SAMPLES / "examples_ybr_color.dcm"])
            cine = pydicom.dcmread(SAMPLES / "examples_ybr_color.dcm", stop_before_pixels=True)
            first = pydicom.dcmread(series[0], stop_before_pixels=True)
            ct_urls = [
                f"{app.root(ingest_case)}/studies/{first.StudyInstanceUID}/series/"
                f"{first.SeriesInstanceUID}/instances/"
                f"{pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID}/rendered"
                for p in series[:20]
            ]
            cine_urls = [
                f"{app.root(render_case)}/studies/{cine.StudyInstanceUID}/series/"
                f"{cine.SeriesInstanceUID}/instances/{cine.SOPInstanceUID}/frames/{n}/rendered"
                for n in range(1, 21)
            ]

            def get(url: str) -> None:
                answer = app.session.get(url, headers={"Accept": "image/png"}, timeout=60)
                answer.raise_for_status()

            ct_cold = [timed(lambda u=u: get(u), 1)[0] for u in ct_urls]
            ct_warm = timed(lambda: get(ct_urls[0]), 30)
            cine_cold = [timed(lambda u=u: get(u), 1)[0] for u in cine_urls]
            cine_warm = timed(lambda: get(cine_urls[0]), 30)
            print(
                f"telemed rendered CT slice (PNG):     cold {median(ct_cold):7.1f} ms  "
                f"warm {median(ct_warm):6.1f} ms  (medians of 20 / 30)"
            )
            print(
                f"telemed rendered cine frame (PNG):   cold {median(cine_cold):7.1f} ms  "
                f"warm {median(cine_warm):6.1f} ms"
            )
            qido = (
                f"{app.root(ingest_case)}/studies/{first.StudyInstanceUID}/series/"
                f"{first.SeriesInstanceUID}/instances"
            )
            meta = (
                f"{app.root(ingest_case)}/studies/{first.StudyInstanceUID}/series/"
                f"{first.SeriesInstanceUID}/metadata"
            )
            ours_qido = timed(lambda: app.session.get(qido, timeout=60).raise_for_status(), 10)
            ours_meta = timed(lambda: app.session.get(meta, timeout=60).raise_for_status(), 10)
            print(
                f"telemed QIDO instances of the series: {median(ours_qido):7.1f} ms; "
                f"series metadata: {median(ours_meta):7.1f} ms (medians of 10)"
            )

            if args.big_mb:
                big = make_big_multiframe(work / "big.dcm", args.big_mb)
                size_mb = big.stat().st_size / 1024**2
                before = rss_mb(app.pid)
                with PeakSampler(app.pid) as sampler:
                    start = time.perf_counter()
                    app.tus_upload(big_case, big)
                    elapsed = time.perf_counter() - start
                print(
                    f"telemed tus upload of {size_mb:.0f} MB ({CHUNK // 1024**2} MB PATCHes): "
                    f"{elapsed:.1f} s; server RSS {before:.0f} MB before, peak {sampler.peak:.0f} "
                    f"MB; decoding workers peak {sampler.peak_children:.0f} MB"
                )
                big.unlink()
        finally:
            app.stop()

        if orthanc is not None:
            cine_id = orthanc.session.post(
                f"{orthanc.url}/instances",
                data=(SAMPLES / "examples_ybr_color.dcm").read_bytes(),
                timeout=60,
            ).json()["ID"]
            previews = [f"{orthanc.url}/instances/{i}/preview" for i in ids[:20]]
            cine_previews = [
                f"{orthanc.url}/instances/{cine_id}/frames/{n}/preview" for n in range(20)
            ]

            def oget(url: str) -> None:
                orthanc.session.get(
                    url, headers={"Accept": "image/png"}, timeout=60
                ).raise_for_status()

            o_cold = [timed(lambda u=u: oget(u), 1)[0] for u in previews]
            o_warm = timed(lambda: oget(previews[0]), 30)
            oc_cold = [timed(lambda u=u: oget(u), 1)[0] for u in cine_previews]
            oc_warm = timed(lambda: oget(cine_previews[0]), 30)
            print(
                f"Orthanc /preview CT slice (PNG):     first {median(o_cold):7.1f} ms  "
                f"again {median(o_warm):6.1f} ms"
            )
            print(
                f"Orthanc /preview cine frame (PNG):   first {median(oc_cold):7.1f} ms  "
                f"again {median(oc_warm):6.1f} ms"
            )
            if not orthanc.dicomweb:
                print("Orthanc QIDO and metadata: skipped (its DICOMweb plugin is not installed)")
            else:
                first = pydicom.dcmread(series[0], stop_before_pixels=True)
                base = (
                    f"{orthanc.url}/dicom-web/studies/{first.StudyInstanceUID}/series/"
                    f"{first.SeriesInstanceUID}"
                )
                o_qido = timed(
                    lambda: orthanc.session.get(f"{base}/instances", timeout=60).raise_for_status(),
                    10,
                )
                o_meta = timed(
                    lambda: orthanc.session.get(f"{base}/metadata", timeout=120).raise_for_status(),
                    10,
                )
                print(
                    f"Orthanc QIDO instances of the series: {median(o_qido):7.1f} ms; "
                    f"series metadata: {median(o_meta):7.1f} ms (medians of 10)"
                )
    finally:
        if orthanc is not None:
            orthanc.stop()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=500)
    parser.add_argument("--batch", type=int, default=25)
    parser.add_argument("--big-mb", type=int, default=1024)
    parser.add_argument("--no-orthanc", dest="orthanc", action="store_false")
    parser.add_argument("--install-orthanc", action="store_true")
    args = parser.parse_args()
    if args.install_orthanc and orthanc_binary() is None:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "install", "-y", "-qq", "orthanc", "orthanc-dicomweb"], env=env)
    if os.environ.get("TELEMED_BENCH_NETNS") != "1" and shutil.which("unshare"):
        # Loopback only: Orthanc binds every interface; nothing outside can reach either.
        env = dict(os.environ, TELEMED_BENCH_NETNS="1")
        command = ["unshare", "-n", "--", sys.executable, __file__, *sys.argv[1:]]
        sys.exit(subprocess.run(command, env=env, check=False).returncode)
    run(args)


if __name__ == "__main__":
    main()
