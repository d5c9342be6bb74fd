"""Video: frames -> faces -> tracks -> scores over time.

    clip -> read_frames (sampled, working size) -> detect_faces -> IoUTracker (one id per person)
         -> crop_face -> Recognizer.score_crops (faces of many frames in one batch) -> VideoResult

``analyze_video`` is the whole flow; ``VideoResult`` turns into the CSV (one row per face per sampled
frame), a JSON summary and the per-face timelines (fer.render.timeline_figure)::

    result = analyze_video("clip.mp4", Recognizer.from_zoo(names=["custom_cnn"]), every=2)
    result.write_csv("faces.csv")
    [(s.face_id, s.dominant) for s in result.summaries()]

Speed: video defaults to the fast ``haar`` detector (MTCNN costs 40-160 ms a frame on this CPU), run on
frames shrunk to at most ``MAX_VIDEO_SIDE`` pixels; ``detect_every=k`` detects on every k-th sampled frame
only and keeps the tracked boxes in between. Both are options.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from fer.errors import VideoError
from fer.faces import Box, crop_face, detect_faces, detector_spec
from fer.labels import EMOTIONS

log = logging.getLogger(__name__)

VIDEO_DETECTOR = "haar"
"""The default detector for video: with it the whole flow costs 47 ms a 640x480 frame on this project's CPU,
107 ms with MTCNN (benchmarks/video.py)."""
MAX_VIDEO_SIDE = 640
"""Frames larger than this (longest side) are shrunk before detection and cropping; boxes are reported in
the clip's own pixels."""
BATCH_FACES = 64
"""Faces are scored in batches of this many, gathered across frames."""
VIDEO_SUFFIXES = ".mp4, .webm, .mov, .avi, .mkv"


# Tracking -------------------------------------------------------------------------------------------


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (0 when they do not overlap)."""
    w = min(a.x + a.w, b.x + b.w) - max(a.x, b.x)
    h = min(a.y + a.h, b.y + b.h) - max(a.y, b.y)
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / (a.w * a.h + b.w * b.h - inter)


@dataclass
class Track:
    """A face followed across frames: its id, its last box, and how many updates in a row missed it."""

    face_id: int
    box: Box
    missed: int = 0


@dataclass
class IoUTracker:
    """Follows faces across frames by box overlap, so that a person keeps one id.

    Each ``update`` matches the new boxes to the live tracks greedily, highest IoU first; a pair below
    ``min_iou`` is no match. An unmatched box starts a track with a new id; a track missed more than
    ``max_missed`` updates in a row ends (a face the detector loses for a frame or two keeps its id).
    ``reset`` ends every track (a cut): ids keep counting, so a face after a cut never reuses one."""

    min_iou: float = 0.3
    max_missed: int = 2
    tracks: list[Track] = field(default_factory=list)
    next_id: int = 1

    def update(self, boxes: list[Box]) -> list[int]:
        """The face id of each box, in the order given."""
        pairs = sorted(((iou(t.box, b), ti, bi) for ti, t in enumerate(self.tracks) for bi, b in enumerate(boxes)),
                       reverse=True)
        ids: list[int | None] = [None] * len(boxes)
        matched: set[int] = set()
        for overlap, ti, bi in pairs:
            if overlap < self.min_iou:
                break
            if ti in matched or ids[bi] is not None:
                continue
            track = self.tracks[ti]
            track.box, track.missed = boxes[bi], 0
            ids[bi] = track.face_id
            matched.add(ti)
        for ti, track in enumerate(self.tracks):
            if ti not in matched:
                track.missed += 1
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        for bi, box in enumerate(boxes):
            if ids[bi] is None:
                self.tracks.append(Track(self.next_id, box))
                ids[bi] = self.next_id
                self.next_id += 1
        return ids

    def current(self) -> list[Track]:
        """The tracks seen in the last update (what a frame without detection keeps)."""
        return [t for t in self.tracks if t.missed == 0]

    def reset(self) -> None:
        self.tracks = []


CUT_THRESHOLD = 0.2
"""Two sampled frames whose grey-level histograms are further apart than this (Bhattacharyya distance,
0 = same, 1 = disjoint) are a cut: every track ends. A face moving over a still background stays far
below it (under 0.1 in tests/test_video.py); a cut between two photos lies above it."""


def frame_signature(rgb: np.ndarray) -> np.ndarray:
    """A 32-bin grey-level histogram of a small copy of the frame, for cut detection."""
    small = cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), (64, 48), interpolation=cv2.INTER_AREA)
    hist = cv2.calcHist([small], [0], None, [32], [0, 256])
    return cv2.normalize(hist, hist).flatten()


def is_cut(previous: np.ndarray | None, current: np.ndarray, threshold: float = CUT_THRESHOLD) -> bool:
    """Whether two frame signatures lie on either side of a cut."""
    if previous is None:
        return False
    return cv2.compareHist(previous, current, cv2.HISTCMP_BHATTACHARYYA) > threshold


# Reading --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VideoInfo:
    """What a clip says about itself: frame rate, frame count (as the container states it), size."""

    fps: float
    frame_count: int
    width: int
    height: int

    @property
    def duration_s(self) -> float:
        return self.frame_count / self.fps


@dataclass(frozen=True)
class Frame:
    """A sampled frame: its index in the clip, its time, the RGB image at working size, and the factor from
    its pixels to the clip's."""

    index: int
    time_s: float
    rgb: np.ndarray
    scale: float


def _open(path: str | Path) -> cv2.VideoCapture:
    path = Path(path)
    if not path.exists():
        raise VideoError(f"No such file: {path}")
    if path.stat().st_size == 0:
        raise VideoError(f"{path.name} is empty: upload a video clip ({VIDEO_SUFFIXES}).")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise VideoError(f"{path.name} is not a readable video (corrupt, truncated, without frames, or not a video): "
                         f"try another clip ({VIDEO_SUFFIXES}) or re-encode it, e.g. ffmpeg -i IN -c:v libx264 OUT.mp4.")
    return capture


def probe_video(path: str | Path) -> VideoInfo:
    """The clip's frame rate, frame count and size, read without decoding it; VideoError if it cannot be opened
    or states no frame rate."""
    capture = _open(path)
    try:
        return _info(capture, Path(path))
    finally:
        capture.release()


def _info(capture: cv2.VideoCapture, path: Path) -> VideoInfo:
    fps = capture.get(cv2.CAP_PROP_FPS)
    if not (fps and math.isfinite(fps) and 0 < fps <= 1000):
        raise VideoError(f"{path.name} states no frame rate, so frame times are unknown: re-encode it, e.g. "
                         "ffmpeg -i IN -r 25 OUT.mp4.")
    return VideoInfo(float(fps), max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT))),
                     int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))


def sampled(index: int, native_fps: float, every: int | None = None, fps: float | None = None) -> bool:
    """Whether frame ``index`` is sampled: every ``every``-th frame, or about ``fps`` frames a second (the
    first frame of each 1/fps slot); every frame when neither is given."""
    if fps is not None:
        return index == 0 or math.floor(index * fps / native_fps) != math.floor((index - 1) * fps / native_fps)
    return index % (every or 1) == 0


def _check_sampling(every: int | None, fps: float | None) -> None:
    if every is not None and fps is not None:
        raise VideoError("Sample with either --every N or --fps F, not both.")
    if every is not None and every < 1 or fps is not None and fps <= 0:
        raise VideoError("Sample with --every N (N >= 1) or --fps F (F > 0).")


def read_frames(path: str | Path, every: int | None = None, fps: float | None = None,
                max_side: int = MAX_VIDEO_SIDE, max_frames: int | None = None) -> Iterator[Frame]:
    """The clip's sampled frames in order (see ``sampled``), shrunk to ``max_side``; at most ``max_frames``
    of them. Frames that are skipped are not decoded into images. VideoError if no frame can be read."""
    _check_sampling(every, fps)
    capture = _open(path)
    try:
        info = _info(capture, Path(path))
        index = taken = 0
        while max_frames is None or taken < max_frames:
            if not sampled(index, info.fps, every, fps):
                if not capture.grab():
                    break
                index += 1
                continue
            ok, bgr = capture.read()
            if not ok:
                break
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            h, w = rgb.shape[:2]
            scale = min(1.0, max_side / max(h, w))
            if scale < 1.0:
                rgb = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
            yield Frame(index, index / info.fps, rgb, 1.0 / scale)
            taken += 1
            index += 1
        if (max_frames is None or taken < max_frames) and 0 < index < info.frame_count - 1:  # counts may be off by one
            log.warning("%s: decoding stopped at frame %d of the %d the file states; the rest is unreadable",
                        Path(path).name, index, info.frame_count)
        if index == 0:
            raise VideoError(f"{Path(path).name} has no frame that can be decoded: the file is corrupt or empty; "
                             "try another clip or re-encode it.")
    finally:
        capture.release()


# Results --------------------------------------------------------------------------------------------


@dataclass
class FaceSample:
    """One face in one sampled frame: when, which face (its track id), where (box in the clip's pixels) and its
    seven scores under the model."""

    time_s: float
    frame: int
    face_id: int
    box: Box
    scores: dict[str, float] = field(default_factory=dict)

    @property
    def top(self) -> tuple[str, float]:
        emotion = max(self.scores, key=self.scores.get)
        return emotion, self.scores[emotion]

    def to_dict(self) -> dict:
        return {"time_s": round(self.time_s, 3), "frame": self.frame, "face_id": self.face_id,
                "box": self.box.to_list(), "scores": self.scores}


@dataclass
class FaceSummary:
    """One face over the clip: when it was seen, in how many sampled frames, its mean scores and the dominant
    emotion (the highest mean score)."""

    face_id: int
    first_s: float
    last_s: float
    samples: int
    mean_scores: dict[str, float]

    @property
    def dominant(self) -> str:
        return max(self.mean_scores, key=self.mean_scores.get)

    def to_dict(self) -> dict:
        return {"face_id": self.face_id, "first_s": round(self.first_s, 3), "last_s": round(self.last_s, 3),
                "samples": self.samples, "dominant": self.dominant,
                "mean_scores": {e: round(p, 4) for e, p in self.mean_scores.items()}}


CSV_HEADER = ["time_s", "frame", "face_id", "x", "y", "w", "h", *EMOTIONS]


@dataclass
class VideoResult:
    """Every face in every sampled frame of a clip, scored by one model. ``frames`` are the indices of the
    sampled frames (with or without faces); ``truncated`` says the clip went on past ``max_frames``."""

    source: str
    model: str
    detector: str
    info: VideoInfo
    frames: list[int]
    samples: list[FaceSample]
    truncated: bool = False
    cuts: list[float] = field(default_factory=list)  # times of the cuts found (every track ended there)

    @property
    def face_ids(self) -> list[int]:
        return sorted({s.face_id for s in self.samples})

    def samples_of(self, face_id: int) -> list[FaceSample]:
        return [s for s in self.samples if s.face_id == face_id]

    def summaries(self) -> list[FaceSummary]:
        """One summary per face id, in order of first appearance."""
        out = []
        for face_id in self.face_ids:
            mine = self.samples_of(face_id)
            mean = np.asarray([[s.scores[e] for e in EMOTIONS] for s in mine]).mean(axis=0)  # over time
            out.append(FaceSummary(face_id, mine[0].time_s, mine[-1].time_s, len(mine),
                                   dict(zip(EMOTIONS, map(float, mean)))))
        return out

    def csv_rows(self) -> list[list]:
        """The CSV's rows under CSV_HEADER: one per face per sampled frame, in time order."""
        return [[f"{s.time_s:.3f}", s.frame, s.face_id, *s.box.to_list(), *[f"{s.scores[e]:.6f}" for e in EMOTIONS]]
                for s in self.samples]

    def write_csv(self, path: str | Path) -> Path:
        path = Path(path)
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(CSV_HEADER)
            writer.writerows(self.csv_rows())
        return path

    def to_dict(self, samples: bool = False) -> dict:
        """The summary as JSON (with ``samples``, every row of the CSV too)."""
        out = {"source": self.source, "model": self.model, "detector": self.detector, "fps": self.info.fps,
               "width": self.info.width, "height": self.info.height, "frames_sampled": len(self.frames),
               "truncated": self.truncated, "cuts_s": [round(t, 3) for t in self.cuts],
               "faces": [s.to_dict() for s in self.summaries()]}
        if samples:
            out["samples"] = [s.to_dict() for s in self.samples]
        return out


# The flow -------------------------------------------------------------------------------------------


def analyze_video(path: str | Path, recognizer, model: str | None = None, every: int | None = None,
                  fps: float | None = None, detector: str = VIDEO_DETECTOR, detect_every: int = 1,
                  detect_side: int | None = None, max_side: int = MAX_VIDEO_SIDE, max_frames: int | None = None,
                  detect_cuts: bool = True, tracker: IoUTracker | None = None,
                  progress: Callable[[int, int], None] | None = None) -> VideoResult:
    """Find, follow and score every face in a clip.

    Frames are sampled (``every`` N-th frame or ``fps`` a second; every frame by default), at most
    ``max_frames`` of them, shrunk to ``max_side``; faces are found by ``detector`` (on a copy shrunk to
    ``detect_side``, if given) on every ``detect_every``-th sampled frame (in between, the tracked boxes are
    kept) and followed by an IoU tracker that also ends every track at a cut
    (``detect_cuts``). Faces are scored by ``model`` (a name the recognizer knows; its first model by default)
    in batches across frames. ``progress(done, total)`` is called after each sampled frame (``total`` from
    the container's frame count; an estimate). VideoError if the file is not a readable clip or no face is
    found in any sampled frame."""
    detector_spec(detector)  # unknown names and options fail before the clip is read
    _check_sampling(every, fps)
    model = model or next(iter(recognizer.models))
    recognizer.resolve([model])
    if detect_every < 1:
        raise VideoError("detect_every must be 1 or more (1: detect faces on every sampled frame).")
    info = probe_video(path)
    in_clip = sum(sampled(i, info.fps, every, fps) for i in range(info.frame_count))  # by the stated frame count
    total = min(in_clip, max_frames) if max_frames else in_clip
    tracker = tracker or IoUTracker()
    samples: list[FaceSample] = []
    pending: list[tuple[FaceSample, np.ndarray]] = []
    cuts: list[float] = []
    previous = None
    frames: list[int] = []

    def score_pending() -> None:
        if not pending:
            return
        probs = recognizer.score_crops(np.stack([crop for _, crop in pending]), [model])[model]
        for (sample, _), p in zip(pending, probs):
            sample.scores = dict(zip(EMOTIONS, map(float, p)))
        pending.clear()

    for frame in read_frames(path, every, fps, max_side, max_frames):
        signature = frame_signature(frame.rgb) if detect_cuts else None
        cut = detect_cuts and is_cut(previous, signature)
        if cut:
            tracker.reset()
            cuts.append(frame.time_s)
        previous = signature
        if cut or len(frames) % detect_every == 0:
            found = detect_faces(frame.rgb, detector, detect_side=detect_side)
            boxes, eyes = [d.box for d in found], [d.eyes for d in found]
            ids = tracker.update(boxes)
        else:  # between detections the faces stay where they were last found
            kept = tracker.current()
            boxes, eyes, ids = [t.box for t in kept], [None] * len(kept), [t.face_id for t in kept]
        for box, eye, face_id in zip(boxes, eyes, ids):
            clip_box = Box(*[round(v * frame.scale) for v in box.to_list()])
            sample = FaceSample(frame.time_s, frame.index, face_id, clip_box)
            samples.append(sample)
            pending.append((sample, crop_face(frame.rgb, box, eye)))
        if len(pending) >= BATCH_FACES:
            score_pending()
        frames.append(frame.index)
        if progress:
            progress(len(frames), max(total, len(frames)))
    score_pending()
    if not samples:
        raise VideoError(f"No face found in any of the {len(frames)} sampled frames of {Path(path).name} by the {detector} "
                         "detector: try another detector (mtcnn finds tilted faces), sample more frames, or a clip "
                         "with faces turned to the camera.")
    truncated = max_frames is not None and len(frames) >= max_frames and in_clip > max_frames
    return VideoResult(str(path), model, detector, info, frames, samples, truncated, cuts)
