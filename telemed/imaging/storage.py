"""Content-addressed storage under ``TELEMED_STORAGE_DIR``, outside any web-served path.

A file is written under a temporary name inside the store, fsynced, and renamed to its
SHA-256 once complete, so a reader never sees half a file and two writers of the same
content end with one file. Every path is checked to stay inside the root.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import BinaryIO

CHUNK = 1024 * 1024
PREAMBLE = 128
# The areas holding what is made from stored objects and can be made again (renders,
# decompressed copies, split frames, bulk values): bounded by TELEMED_RENDER_CACHE_MB,
# least recently used first out (``store_cleanup.trim_caches``).
CACHE_AREAS = ("renders", "transcoded", "frames", "bulk")
# A cache entry's modification time is its last use, refreshed on a hit at most this
# often (one stat per hit, one utime per entry and ten minutes).
TOUCH_AFTER_S = 600


class OutsideStore(ValueError):
    """A path that would leave the storage root."""


_HEX = frozenset("0123456789abcdef")


class ContentStore:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        self._areas: dict[str, Path] = {}  # areas known to exist (none is ever removed)

    # -- places ---------------------------------------------------------------------------

    def _inside(self, path: Path) -> Path:
        resolved = path.resolve()
        if resolved != self.root and self.root not in resolved.parents:
            raise OutsideStore(f"{path} is outside the storage root")
        return resolved

    def area(self, name: str) -> Path:
        """A folder of the store (``tmp``, ``uploads``, ``renders`` ...), created on demand."""
        path = self._areas.get(name)
        if path is None:
            path = self._inside(self.root / name)
            path.mkdir(parents=True, exist_ok=True)
            self._areas[name] = path
        return path

    def path_of(self, sha256: str, kind: str = "objects") -> Path:
        if len(sha256) != 64 or not _HEX.issuperset(sha256):
            raise OutsideStore(f"not a content address: {sha256!r}")
        # Hex digits under an area: nothing in the name can lead out of the store.
        return self.area(kind) / sha256[:2] / sha256[2:4] / sha256

    def cache_hit(self, path: Path, *, directory: bool = False) -> bool:
        """Whether a cache entry (a file, or a folder of files) is there; a hit marks it
        used (its modification time) so the least recently used go first."""
        try:
            found = os.stat(path)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(found.st_mode) != directory:
            return False
        if time.time() - found.st_mtime > TOUCH_AFTER_S:
            try:
                os.utime(path)
            except FileNotFoundError:  # evicted just now
                return False
        return True

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
        sha, size = self.dicom_address(data)
        self.write_dicom_bytes(data, sha)
        return sha, size

    def dicom_address(self, data: bytes) -> tuple[str, int]:
        """The address and size a DICOM file held in memory is stored under (its SHA-256
        with the preamble zeroed), without writing it."""
        digest = hashlib.sha256(bytes(PREAMBLE))
        digest.update(memoryview(data)[PREAMBLE:])
        return digest.hexdigest(), len(data)

    def write_dicom_bytes(self, data: bytes, sha: str) -> None:
        """Write a DICOM file held in memory under its address (``dicom_address``): once,
        to a temporary name, fsynced, then renamed; nothing when the address exists."""
        final = self.path_of(sha)
        if final.exists():
            return
        fd, name = tempfile.mkstemp(dir=self.area("tmp"), suffix=".part")
        temp = Path(name)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(bytes(PREAMBLE))
                out.write(memoryview(data)[PREAMBLE:])
                out.flush()
                os.fsync(out.fileno())
            self.move_into_place(temp, final)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise

    @staticmethod
    def move_into_place(temp: Path, final: Path) -> None:
        """Rename a written temporary file to its address, making its prefix folder the
        first time one is stored there (a rename, so readers see all of it or nothing)."""
        try:
            os.replace(temp, final)
        except FileNotFoundError:  # the first object under this prefix
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(temp, final)

    def stage_dicom_bytes(self, data: bytes, executor: Executor) -> StagedDicom:
        """Start storing a DICOM file held in memory on ``executor`` before it is checked:
        its address is computed and its bytes written and fsynced under a temporary name
        while the caller checks the header. Nothing enters the store until ``place``; a
        refused file is ``discard``ed (its temporary copy removed)."""
        staged = StagedDicom(self)
        executor.submit(staged.run, data)
        return staged

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


class StagedDicom:
    """A DICOM file being stored (``ContentStore.stage_dicom_bytes``): ``address`` is
    known first (SHA-256 with the preamble zeroed, size), ``written`` once the copy under a
    temporary name is fsynced (None when the store holds that content already)."""

    def __init__(self, store: ContentStore) -> None:
        self.store = store
        self.address: Future[tuple[str, int]] = Future()
        self.written: Future[Path | None] = Future()

    def run(self, data: bytes) -> None:
        try:
            sha, size = self.store.dicom_address(data)
        except BaseException as error:
            self.address.set_exception(error)
            self.written.set_exception(error)
            return
        self.address.set_result((sha, size))
        try:
            temp = None
            if not self.store.path_of(sha).exists():
                fd, name = tempfile.mkstemp(dir=self.store.area("tmp"), suffix=".part")
                temp = Path(name)
                with os.fdopen(fd, "wb") as out:
                    out.write(bytes(PREAMBLE))
                    out.write(memoryview(data)[PREAMBLE:])
                    out.flush()
                    os.fsync(out.fileno())
        except BaseException as error:
            if temp is not None:
                temp.unlink(missing_ok=True)
            self.written.set_exception(error)
            return
        self.written.set_result(temp)

    def place(self) -> tuple[str, int]:
        """Wait until the copy is on disk and move it to its address; its address."""
        sha, size = self.address.result()
        temp = self.written.result()
        if temp is not None:
            final = self.store.path_of(sha)
            try:
                self.store.move_into_place(temp, final)
            except BaseException:
                temp.unlink(missing_ok=True)
                raise
        return sha, size

    def discard(self) -> None:
        """The file was refused: its temporary copy is removed once written (the writer
        is waited for, so nothing of it is left when this returns)."""
        try:
            temp = self.written.result()
        except Exception:  # nothing was kept of a failed write
            return
        if temp is not None:
            temp.unlink(missing_ok=True)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
