"""What the DICOM node's tests share: the listener in this process, a real Orthanc on free
loopback ports, dcmtk's command-line tools, and comparing stored files with their source."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path

import requests

from telemed.dicomnode.scp import DicomListener


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listener(app) -> DicomListener:
    return DicomListener(app, host="127.0.0.1", port=0).start()


def data_set_bytes(path: Path) -> bytes:
    """A Part 10 file's data set: what follows the preamble, "DICM" and the file meta
    information (the meta is not sent over the network; each receiver writes its own)."""
    raw = path.read_bytes()
    assert raw[128:132] == b"DICM", path
    # (0002,0000) UL, explicit VR little endian: tag, VR, 2-byte length, 4-byte value.
    assert raw[132:138] == b"\x02\x00\x00\x00UL", path
    (group_length,) = struct.unpack("<I", raw[140:144])
    return raw[144 + group_length :]


def sent_data_set(path: Path) -> bytes:
    """What a DICOM sender puts on the wire for a file: its data set, less a trailing
    padding element (FFFC,FFFC), which PS3.10 7.2 lets any application drop and dcmtk
    does (CT_small.dcm ends with one)."""
    data = data_set_bytes(path)
    at = data.rfind(b"\xfc\xff\xfc\xff")
    if at >= 0 and data[at + 4 : at + 6] == b"OB":
        (length,) = struct.unpack("<I", data[at + 8 : at + 12])
        if at + 12 + length == len(data):
            return data[:at]
    return data


def as_dcmtk_sends(path: Path, work: Path) -> bytes:
    """The data set dcmtk (storescu, and Orthanc, built on it) puts on the wire for a
    file: re-encoded with explicit lengths (a sequence of undefined length in the file is
    sent with its length), in the file's own transfer syntax. ``dcmconv`` writes exactly
    that encoding."""
    target = work / f"dcmtk-{path.name}"
    converted = dcmtk("dcmconv", str(path), str(target))
    assert converted.returncode == 0, converted.stderr
    return sent_data_set(target)


def same_elements(stored: Path, source: Path) -> None:
    """Decoded, the stored file holds every element of the source with the same value."""
    import pydicom

    mine, theirs = pydicom.dcmread(stored), pydicom.dcmread(source)
    assert [e.tag for e in mine] == [e.tag for e in theirs if e.tag != 0xFFFCFFFC]
    for element in theirs:
        if element.tag != 0xFFFCFFFC:
            assert mine[element.tag].value == element.value, (source.name, element.tag)


def dcmtk(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    tool = shutil.which(args[0])
    assert tool, f"{args[0]} is not installed (Debian's dcmtk; the Makefile's test-tools)"
    return subprocess.run(
        [tool, *args[1:]], capture_output=True, text=True, timeout=timeout, check=False
    )


class Orthanc:
    """Debian's Orthanc with its own configuration and storage in ``work``. Its DICOM
    port binds every interface (1.10 has no option for the address), so it only talks to
    the modalities listed here, checked by host too, and its REST API takes local clients
    only."""

    def __init__(self, work: Path, *, ae_title: str, modalities: dict[str, list]) -> None:
        binary = shutil.which("Orthanc")
        assert binary, "Orthanc is not installed (Debian's orthanc; the Makefile's test-tools)"
        work.mkdir(parents=True, exist_ok=True)
        self.ae_title = ae_title
        self.http_port = free_port()
        self.dicom_port = free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        config = {
            "Name": "member-pacs",
            "StorageDirectory": str(work / "storage"),
            "IndexDirectory": str(work / "index"),
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            "DicomAet": ae_title,
            "DicomServerEnabled": True,
            "DicomCheckCalledAet": True,
            "DicomCheckModalityHost": True,
            "DicomAlwaysAllowEcho": False,
            "DicomAlwaysAllowStore": False,
            "DicomAlwaysAllowFind": False,
            "DicomAlwaysAllowMove": False,
            "DicomAlwaysAllowGet": False,
            "DicomModalities": modalities,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "StorageCompression": False,
            "HttpCompressionEnabled": False,
            "Plugins": [],
        }
        path = work / "orthanc.json"
        path.write_text(json.dumps(config))
        self.log = open(work / "orthanc.log", "wb")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen([binary, str(path)], stdout=self.log, stderr=self.log)
        self.http = requests.Session()
        deadline = time.monotonic() + 30
        while True:
            try:
                self.http.get(f"{self.url}/system", timeout=2).raise_for_status()
                break
            except requests.RequestException:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("Orthanc did not start") from None
                time.sleep(0.2)

    def upload(self, path: Path) -> str:
        answer = self.http.post(f"{self.url}/instances", data=path.read_bytes(), timeout=30)
        answer.raise_for_status()
        return answer.json()["ID"]

    def push(self, modality: str, resources: list[str]) -> dict:
        answer = self.http.post(
            f"{self.url}/modalities/{modality}/store",
            json={"Resources": resources, "Synchronous": True},
            timeout=60,
        )
        answer.raise_for_status()
        return answer.json()

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
