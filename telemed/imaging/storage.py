"""Content-addressed storage under ``TELEMED_STORAGE_DIR``, outside any web-served path.

A file is written under a temporary name inside the store, fsynced, and renamed to its
SHA-256 once complete, so a reader never sees half a file and two writers of the same
content end with one file. Every path is checked to stay inside the root.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

CHUNK = 1024 * 1024
PREAMBLE = 128


class OutsideStore(ValueError):
    """A path that would leave the storage root."""


class ContentStore:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()

    # -- places ---------------------------------------------------------------------------

    def _inside(self, path: Path) -> Path:
        resolved = path.resolve()
        if resolved != self.root and self.root not in resolved.parents:
            raise OutsideStore(f"{path} is outside the storage root")
        return resolved

    def area(self, name: str) -> Path:
        """A folder of the store (``tmp``, ``uploads``, ``renders`` ...), created on demand."""
        path = self._inside(self.root / name)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def path_of(self, sha256: str, kind: str = "objects") -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise OutsideStore(f"not a content address: {sha256!r}")
        return self._inside(self.root / kind / sha256[:2] / sha256[2:4] / sha256)

    def exists(self, sha256: str) -> bool:
        return self.path_of(sha256).exists()

    def temp_file(self, suffix: str = "") -> Path:
        fd, name = tempfile.mkstemp(dir=self.area("tmp"), suffix=suffix)
        os.close(fd)
        return Path(name)

    def temp_dir(self) -> Path:
        return Path(tempfile.mkdtemp(dir=self.area("tmp")))

    def create_private(self, path: Path) -> BinaryIO:
        """A new file inside the store open for writing, readable by this user only
        (0600 whatever the umask): spooled bodies hold patients' images."""
        fd = os.open(self._inside(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        return os.fdopen(fd, "wb")

    # -- writing --------------------------------------------------------------------------

    def put_chunks(self, chunks: Iterable[bytes]) -> tuple[str, int]:
        """Store a stream of bytes; returns its SHA-256 and size."""
        digest = hashlib.sha256()
        size = 0
        temp = self.temp_file(".part")
        try:
            with open(temp, "wb") as out:
                for chunk in chunks:
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            sha = digest.hexdigest()
            final = self.path_of(sha)
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists():
                temp.unlink()
            else:
                os.replace(temp, final)
            return sha, size
        except BaseException:
            temp.unlink(missing_ok=True)
            raise

    def put_dicom_bytes(self, data: bytes) -> tuple[str, int]:
        """Store a DICOM Part 10 file held in memory, preamble zeroed as by ``put_dicom``.
        The address is known before writing, so content already stored is not rewritten."""
        body = memoryview(data)[PREAMBLE:]
        digest = hashlib.sha256(bytes(PREAMBLE))
        digest.update(body)
        sha = digest.hexdigest()
        final = self.path_of(sha)
        size = PREAMBLE + len(body)
        if final.exists():
            return sha, size
        temp = self.temp_file(".part")
        try:
            with open(temp, "wb") as out:
                out.write(bytes(PREAMBLE))
                out.write(body)
                out.flush()
                os.fsync(out.fileno())
            try:
                os.replace(temp, final)
            except FileNotFoundError:  # the first object under this prefix
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(temp, final)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return sha, size

    def put_dicom(self, source: Path) -> tuple[str, int]:
        """Store a DICOM Part 10 file with its 128-byte preamble zeroed (CVE-2019-11687:
        a preamble may carry an executable or TIFF header that makes the file a polyglot)."""

        def chunks():
            with open(source, "rb") as handle:
                handle.read(PREAMBLE)
                yield bytes(PREAMBLE)
                while chunk := handle.read(CHUNK):
                    yield chunk

        return self.put_chunks(chunks())

    def put_file(self, source: Path) -> tuple[str, int]:
        def chunks():
            with open(source, "rb") as handle:
                while chunk := handle.read(CHUNK):
                    yield chunk

        return self.put_chunks(chunks())

    def remove_tree(self, path: Path) -> None:
        shutil.rmtree(self._inside(path), ignore_errors=True)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
