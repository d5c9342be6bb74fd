"""fer.video and python -m fer video: on clips made here from real photos (a face moving and growing, a cut to
another photo), so nothing is downloaded."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import PHOTOS, REPO, needs_photos
from fer.errors import VideoError
from fer.faces import Box
from fer.labels import EMOTIONS
from fer.video import CSV_HEADER, IoUTracker, analyze_video, iou, probe_video, read_frames, sampled

SIZE = (320, 240)  # small frames keep the tests fast; the faces stay far above Haar's smallest size


# The tracker, without video -----------------------------------------------------------------------------


def test_iou_of_known_boxes():
    assert iou(Box(0, 0, 10, 10), Box(0, 0, 10, 10)) == 1.0
    assert iou(Box(0, 0, 10, 10), Box(5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert iou(Box(0, 0, 10, 10), Box(10, 0, 10, 10)) == 0.0


def test_tracker_keeps_ids_through_motion_and_scaling_and_tells_faces_apart():
    tracker = IoUTracker()
    ids = [tracker.update([Box(10 + 4 * t, 20 + t, 60 + 2 * t, 60 + 2 * t), Box(200 - 3 * t, 30, 50, 50)])
           for t in range(20)]
    assert all(pair == [1, 2] for pair in ids)
    assert tracker.update([Box(200 - 3 * 20, 30, 50, 50), Box(10 + 80, 40, 100, 100)]) == [2, 1]  # order given


def test_tracker_bridges_short_misses_and_starts_new_ids_after_a_gap_or_a_reset():
    tracker = IoUTracker(max_missed=2)
    face = Box(100, 100, 80, 80)
    assert tracker.update([face]) == [1]
    assert tracker.update([]) == [] and tracker.update([]) == []
    assert tracker.update([face]) == [1]  # missed twice: still the same person
    for _ in range(3):
        tracker.update([])
    assert tracker.update([face]) == [2]  # gone for longer: a new id
    tracker.reset()
    assert tracker.update([face]) == [3]  # after a cut, even at the same place


def test_sampling_every_n_and_at_a_frame_rate():
    assert [i for i in range(10) if sampled(i, 25, every=3)] == [0, 3, 6, 9]
    assert [i for i in range(50) if sampled(i, 25, fps=5)] == list(range(0, 50, 5))
    assert sum(sampled(i, 30, fps=12) for i in range(300)) == 120
    assert all(sampled(i, 25, fps=60) for i in range(25))
    with pytest.raises(VideoError, match="not both"):
        next(read_frames("clip.mp4", every=2, fps=5))
    with pytest.raises(VideoError, match="N >= 1"):
        next(read_frames("clip.mp4", every=0))


# Clips made from the shared photos ----------------------------------------------------------------------


def _clip(path, shots):
    from benchmarks.video import render_shots, write_clip

    return write_clip(path, render_shots(shots, SIZE))


@pytest.fixture(scope="module")
def cut_clip(tmp_path_factory):
    """30 frames of img5.jpg's face moving right and growing, then a cut to img16.jpg's face at the same place
    for 20 frames (so only the cut, not the motion, can tell the tracker it is someone else)."""
    if not PHOTOS.is_dir():
        pytest.skip(f"test photos not found at {PHOTOS}")
    from benchmarks.video import Shot

    first = Shot(PHOTOS / "img5.jpg", 30, start=(0.35, 0.45), end=(0.6, 0.5), scale=(0.45, 0.6))
    second = Shot(PHOTOS / "img16.jpg", 20, start=(0.6, 0.5), end=(0.6, 0.5), scale=(0.6, 0.6))
    return _clip(tmp_path_factory.mktemp("video") / "cut.mp4", [first, second])


@pytest.fixture(scope="module")
def recognizer(app_zoo):
    from fer.inference import Recognizer

    return Recognizer.from_zoo(app_zoo, names=["alpha"])


@needs_photos
def test_a_person_keeps_one_id_and_a_cut_gives_a_new_one(cut_clip, recognizer):
    result = analyze_video(cut_clip, recognizer)
    assert result.info.fps == 25 and (result.info.width, result.info.height) == SIZE
    assert len(result.frames) == 50
    ids = {s.frame: s.face_id for s in result.samples}
    assert set(ids) == set(range(50)), "one face in every frame"
    assert {ids[f] for f in range(30)} == {1} and {ids[f] for f in range(30, 50)} == {2}
    assert result.cuts == [pytest.approx(30 / 25)]
    assert [(s.face_id, s.samples) for s in result.summaries()] == [(1, 30), (2, 20)]
    assert all(s.dominant in EMOTIONS for s in result.summaries())


@needs_photos
def test_the_csv_has_one_row_per_face_per_sampled_frame(cut_clip, recognizer, tmp_path):
    result = analyze_video(cut_clip, recognizer, every=3)
    assert result.frames == list(range(0, 50, 3))
    with open(result.write_csv(tmp_path / "faces.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == CSV_HEADER
    assert [int(r["frame"]) for r in rows] == result.frames
    assert len({(r["frame"], r["face_id"]) for r in rows}) == len(rows) == len(result.samples)
    for row, sample in zip(rows, result.samples):
        assert float(row["time_s"]) == pytest.approx(sample.frame / 25, abs=1e-3)
        assert sum(float(row[e]) for e in EMOTIONS) == pytest.approx(1.0, abs=1e-4)
        assert [int(row[k]) for k in "xywh"] == sample.box.to_list()


@needs_photos
def test_faces_scored_in_batches_equal_faces_scored_one_by_one(cut_clip, recognizer):
    from fer.faces import crop_face

    result = analyze_video(cut_clip, recognizer, every=10)
    frames = {f.index: f for f in read_frames(cut_clip, every=10)}
    for sample in result.samples:
        crop = crop_face(frames[sample.frame].rgb, sample.box)
        alone = recognizer.score_crops(crop[None], ["alpha"])["alpha"][0]
        assert [sample.scores[e] for e in EMOTIONS] == pytest.approx(list(alone), abs=1e-5)


@needs_photos
def test_detecting_every_kth_frame_keeps_the_boxes_in_between(cut_clip, recognizer):
    result = analyze_video(cut_clip, recognizer, detect_every=5)
    assert len(result.samples) == 50 and [s.samples for s in result.summaries()] == [30, 20]
    boxes = [s.box for s in result.samples]
    assert boxes[1] == boxes[4] == boxes[0] and boxes[5] != boxes[0]


def test_unreadable_files_are_clear_errors(tmp_path):
    with pytest.raises(VideoError, match="No such file"):
        probe_video(tmp_path / "missing.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(VideoError, match="empty.mp4 is empty"):
        probe_video(tmp_path / "empty.mp4")
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    with pytest.raises(VideoError, match="not a readable video"):
        list(read_frames(garbage))
    import cv2

    no_frames = tmp_path / "no_frames.mp4"
    cv2.VideoWriter(str(no_frames), cv2.VideoWriter_fourcc(*"mp4v"), 25, SIZE).release()  # a container, no frame
    with pytest.raises(VideoError, match="without frames"):
        list(read_frames(no_frames))


@needs_photos
def test_a_truncated_clip_is_a_clear_error(cut_clip, tmp_path):
    data = cut_clip.read_bytes()
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(data[: len(data) // 2])  # the index (moov) of an mp4v file comes last
    with pytest.raises(VideoError, match="not a readable video|no frame that can be decoded"):
        list(read_frames(truncated))


@needs_photos
def test_a_clip_without_faces_is_a_clear_error(tmp_path, recognizer):
    import cv2

    from benchmarks.video import write_clip
    from fer.faces import decode_image

    blurred = cv2.resize(cv2.GaussianBlur(decode_image(PHOTOS / "img5.jpg"), (0, 0), 25), SIZE)
    clip = write_clip(tmp_path / "nobody.mp4", (blurred for _ in range(10)))
    with pytest.raises(VideoError, match="No face found in any of the 10 sampled frames of nobody.mp4"):
        analyze_video(clip, recognizer)


@needs_photos
def test_cli_writes_csv_summary_timelines_and_annotated_video(cut_clip, fer_command, tmp_path):
    status, out = fer_command("video", str(cut_clip), "--model", "alpha", "--fps", "5", "--out", str(tmp_path / "out"),
                              "--annotate")
    assert status == 0, out.err[-2000:]
    written = {p.name for p in (tmp_path / "out").iterdir()}
    assert written == {"faces.csv", "summary.json", "timeline_face_1.png", "timeline_face_2.png", "annotated.webm"}
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["frames_sampled"] == 10 and summary["model"] == "alpha" and summary["detector"] == "haar"
    assert [f["face_id"] for f in summary["faces"]] == [1, 2] and all(f["dominant"] in EMOTIONS for f in summary["faces"])
    assert "Face 1:" in out.out and "Face 2:" in out.out
    assert probe_video(tmp_path / "out" / "annotated.webm").frame_count in (0, 50)  # WebM may not state a count
    assert len(list(read_frames(tmp_path / "out" / "annotated.webm"))) == 50


def test_cli_reports_a_corrupt_clip_in_one_line(fer_command, tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video")
    status, out = fer_command("video", str(bad))
    assert status == 2 and out.err.strip().splitlines()[-1].startswith("error: bad.mp4 is not a readable video")


@needs_photos
def test_the_app_video_tab_shows_timelines_summary_and_csv_within_its_limits(cut_clip, app_zoo):
    """The Video tab's handler in app.py (imported with the test zoo), its one-clip-at-a-time queue, and its
    clip-length limit."""
    code = f"""
import json, gradio as gr, app
fig, summary, csv_path = app.analyze_clip({str(cut_clip)!r}, "alpha", "haar", 5, progress=lambda *a, **k: None)
rows = open(csv_path).read().splitlines()
(fn,) = [f for f in app.demo.fns.values() if f.name == "analyze_clip"]
app.VIDEO_MAX_SECONDS = 1
try:
    app.analyze_clip({str(cut_clip)!r}, "alpha", "haar", 5, progress=lambda *a, **k: None)
    refused = ""
except gr.Error as e:
    refused = str(e)
print(json.dumps({{"panels": len(fig.axes), "summary": summary, "rows": len(rows), "limit": fn.concurrency_limit,
                  "group": fn.concurrency_id, "refused": refused}}))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300,
                          env={**os.environ, "FER_ZOO_DIR": str(app_zoo)})
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["panels"] == 2 and got["rows"] == 1 + 10  # header + 10 sampled frames (2 s at 5 a second)
    assert "Face 1: **" in got["summary"] and "Face 2: **" in got["summary"] and "1 cut" in got["summary"]
    assert got["limit"] == 1 and got["group"] == "video"
    assert "up to 1 s" in got["refused"]
