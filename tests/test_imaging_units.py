"""The pieces under the DICOM service: worker limits, identity warnings, windowing, the
store's boundaries, zip entry checks, UID remapping."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from telemed.domain.dicom_identity import IdentityMismatch, identity_warnings, normalised_name
from telemed.imaging import safezip
from telemed.imaging.deidentify import UidMap
from telemed.imaging.rendering import Window, apply_window, parse_window
from telemed.imaging.storage import ContentStore, OutsideStore
from telemed.imaging.worker import WorkerFailed, WorkerLimits, WorkerPool


@pytest.fixture
def small_pool():
    pool = WorkerPool(
        WorkerLimits(memory_bytes=768 * 1024**2, cpu_seconds=2, timeout_seconds=4), size=1
    )
    yield pool
    pool.close()


def test_a_worker_that_wants_too_much_memory_is_replaced(small_pool):
    with pytest.raises(WorkerFailed) as failed:
        small_pool.call("allocate", bytes=2 * 1024**3)
    assert "memory limit" in str(failed.value)
    assert small_pool.call("allocate", bytes=1024)["held"] == 1024  # a fresh worker


def test_a_worker_that_runs_too_long_is_stopped(small_pool):
    first = small_pool.call("ping")["pid"]
    with pytest.raises(WorkerFailed) as failed:
        small_pool.call("spin", seconds=30)
    assert "CPU time" in str(failed.value) or "longer than" in str(failed.value)
    assert small_pool.call("ping")["pid"] != first


def test_identity_warnings_compare_names_loosely_and_ids_exactly():
    assert normalised_name("Zhang^San") == normalised_name("san zhang")
    assert identity_warnings("Zhang San", ["110105194912310021"], "ZHANG^SAN", None) == []
    warnings = identity_warnings("Zhang San", ["110105194912310021"], "Li^Si", "12345")
    assert warnings == [
        IdentityMismatch("name", "Li^Si", "Zhang San"),
        IdentityMismatch("id", "12345"),
    ]
    assert identity_warnings("Zhang San", [""], None, "12345") == []  # nothing to compare


def test_windows_follow_ps3_3():
    values = np.array([-1000.0, 40.0, 1000.0])
    linear = apply_window(values, Window(40, 400))
    assert linear[0] == 0 and linear[2] == 1 and 0.45 < linear[1] < 0.55
    sigmoid = apply_window(values, Window(40, 400, "SIGMOID"))
    assert sigmoid[1] == pytest.approx(0.5)
    assert parse_window("40,400,linear-exact") == Window(40, 400, "LINEAR_EXACT")
    for bad in ("40", "40,0", "a,b", "40,400,cubic"):
        with pytest.raises(ValueError):
            parse_window(bad)


def test_the_store_stays_inside_its_root(tmp_path):
    store = ContentStore(tmp_path / "store")
    with pytest.raises(OutsideStore):
        store.path_of("../" * 10 + "etc/passwd")
    with pytest.raises(OutsideStore):
        store.area("../outside")
    sha, size = store.put_chunks([b"abc", b"def"])
    assert store.path_of(sha).read_bytes() == b"abcdef" and size == 6
    assert store.put_chunks([b"abcdef"])[0] == sha  # same content, one file
    assert list((tmp_path / "store" / "tmp").iterdir()) == []


def test_zip_entry_checks(tmp_path):
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("ok/IM1", b"x")
        bundle.writestr("..\\windows.dcm", b"x")
        bundle.writestr("C:/drive.dcm", b"x")
    staging = tmp_path / "staging"
    staging.mkdir()
    expanded = safezip.expand(archive, staging)
    assert [name for name, _ in expanded.files] == ["ok/IM1"]
    assert {name for name, _ in expanded.refused} == {"..\\windows.dcm", "C:/drive.dcm"}
    assert all(path.parent == staging for _, path in expanded.files)
    not_zip = tmp_path / "b.zip"
    not_zip.write_bytes(b"PK\x03\x04 broken")
    with pytest.raises(safezip.ZipRefused):
        safezip.expand(not_zip, staging)


def test_uids_are_remapped_consistently_and_standard_ones_kept():
    uids = UidMap(b"secret")
    first = uids("1.2.3.4")
    assert first == uids("1.2.3.4") and first.startswith("2.25.") and len(first) <= 64
    assert uids("1.2.840.10008.5.1.4.1.1.2") == "1.2.840.10008.5.1.4.1.1.2"
    assert UidMap(b"other")("1.2.3.4") != first
