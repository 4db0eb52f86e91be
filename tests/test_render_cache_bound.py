"""The caches made from stored objects (renders, split frames, decompressed copies, bulk
values) stay within TELEMED_RENDER_CACHE_MB: the hourly clean-up takes the least
recently used entries first; a hit marks an entry used; what was taken is made again when
next asked for."""

from __future__ import annotations

import os
import time

from telemed import clock
from telemed.services import cleanup
from telemed.services.accounts.context import actor_of
from telemed.services.cases import dicom, store_cleanup
from tests import dicom_files
from tests.test_dicom_service import open_imaging_case

FILLER = 300 * 1024


def used_hours_ago(path, hours: float) -> None:
    then = time.time() - hours * 3600
    os.utime(path, (then, then))


def render(instance):
    return dicom.rendered_frame(
        instance, frame=0, media_type="image/png", window=None, quality=90, viewport=None
    )


def test_the_least_recently_used_go_first_and_recently_used_stay(app, world, tmp_path):
    app.config["TELEMED_RENDER_CACHE_MB"] = 1
    case = open_imaging_case(world)
    gp = actor_of(world.user("gp_ts1"))
    dicom.attach_files(gp, case.id, [("ct.dcm", dicom_files.ct_series(tmp_path, 1)[0])])
    [instance] = dicom.instances_of(case.id)
    content = dicom.store()

    rendered = render(instance)  # a real render, by a worker
    [frame] = dicom.frame_files(instance, native=True)  # the instance split into frames
    frames, frame_bytes = frame.parent, frame.read_bytes()
    # Other renders filling the cache past its bound: 5 × 300 KB against 1 MB.
    fillers = []
    for number in range(5):
        path = content.area("renders") / "ab" / f"{number:064x}" / f"0-{number}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\x89PNG" + bytes(FILLER - 4))
        used_hours_ago(path, 5 - number)  # fillers[0] is the oldest of them, 5 hours
        fillers.append(path)
    used_hours_ago(rendered, 6)
    used_hours_ago(frames, 7)
    # The oldest render is shown again now: the hit marks it used.
    assert render(instance) == rendered
    assert time.time() - rendered.stat().st_mtime < 60

    total = sum(entry.size for entry in store_cleanup.cache_entries(content))
    assert total > 1024**2
    result = cleanup.run_all(clock.now())

    # Least recently used first, until within the bound: the frames (7 h), the 5 h and the
    # 4 h renders; the rest, and the render just shown again, stay.
    assert result["render_cache"] == 3
    assert not frames.exists()
    assert not fillers[0].exists() and not fillers[1].exists()
    assert all(path.exists() for path in fillers[2:])
    assert rendered.exists()
    left = sum(entry.size for entry in store_cleanup.cache_entries(content))
    assert left <= 1024**2

    # What went is made again when asked for.
    [again] = dicom.frame_files(instance, native=True)
    assert again.read_bytes() == frame_bytes


def test_within_the_bound_nothing_goes_and_recent_entries_are_never_taken(app, world):
    app.config["TELEMED_RENDER_CACHE_MB"] = 1
    content = dicom.store()
    old = content.area("bulk") / "cd" / ("c" * 64) / "00420011"
    old.parent.mkdir(parents=True, exist_ok=True)
    old.write_bytes(bytes(FILLER))
    used_hours_ago(old, 10)
    assert cleanup.run_all(clock.now())["render_cache"] == 0
    assert old.exists()

    # Over the bound, but only by entries used in the last minutes (being read now): kept.
    recent = content.area("transcoded") / f"{'d' * 64}.explicit-le.dcm"
    recent.write_bytes(bytes(1024**2))
    assert cleanup.run_all(clock.now())["render_cache"] == 1  # only the old one goes
    assert not old.exists() and recent.exists()
