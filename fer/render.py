"""What the demo shows, computed without a browser: annotated photos, the verdict on a face (uncertain or
not), where the models disagree, comparison charts, the leaderboard."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from fer.calibration import Calibration
from fer.ensemble import ENSEMBLE
from fer.inference import Face, ImageResult
from fer.labels import EMOTIONS

BOX_COLOURS = [(46, 204, 113), (52, 152, 219), (231, 76, 60), (241, 196, 15), (155, 89, 182), (26, 188, 156)]


SELECTED_COLOUR = (255, 214, 0)


def annotate(result: ImageResult, model: str, selected: int | None = None) -> np.ndarray:
    """The image with each face's box, number and top emotion under ``model`` drawn on it; the face at
    index ``selected`` is drawn with a thick yellow outline."""
    image = result.image.copy()
    thickness = line_thickness(image)
    for i, face in enumerate(result.faces):
        if face.box is None:
            continue
        b = face.box
        if i == selected:
            cv2.rectangle(image, (b.x - thickness, b.y - thickness), (b.x + b.w + thickness, b.y + b.h + thickness),
                          SELECTED_COLOUR, 3 * thickness)
        draw_label(image, b, f"{i + 1}: {face_label(face, model)}", i)
    return image


def line_thickness(image: np.ndarray) -> int:
    """Box lines grow with the image, so that they stay visible on large photos."""
    return max(2, round(max(image.shape[:2]) / 400))


def draw_label(image: np.ndarray, box, text: str, colour_index: int) -> None:
    """Draw ``box`` and a ``text`` tag above it onto the RGB ``image`` in place, in the colour ``colour_index``
    picks (the same colour for the same face number or id)."""
    thickness = line_thickness(image)
    scale = max(0.5, max(image.shape[:2]) / 1000)
    colour = BOX_COLOURS[colour_index % len(BOX_COLOURS)]
    b = box
    cv2.rectangle(image, (b.x, b.y), (b.x + b.w, b.y + b.h), colour, thickness)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    y = max(b.y, th + base + 2)
    cv2.rectangle(image, (b.x, y - th - base - 2), (b.x + tw + 4, y), colour, -1)
    cv2.putText(image, text, (b.x + 2, y - base), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness, cv2.LINE_AA)


def face_label(face: Face, model: str) -> str:
    """A face's top emotion under ``model``, or 'uncertain' with it when the score is below the model's
    threshold: "happy 93%", "uncertain (sad 41%)"."""
    emotion, p = face.top(model)
    return f"uncertain ({emotion} {p:.0%})" if face.is_uncertain(model) else f"{emotion} {p:.0%}"


def verdict(face: Face, model: str, calibration: Calibration | None, number: int = 1) -> str:
    """One markdown line on a face under ``model``: its top emotion, or **uncertain** when the top score is
    below the model's threshold, with what that threshold means on the validation faces."""
    emotion, p = face.top(model)
    if calibration is None:
        return (f"Face {number}: **{emotion}** {p:.2f}. {model} has no validated threshold, so no face is called "
                "uncertain (fit one with `python -m fer zoo calibrate`).")
    t = calibration.uncertain_threshold
    rule = f"{model} is right on at least {calibration.target_accuracy:.0%} of validation faces that score {t:.2f} or more"
    validation = calibration.validation.selective if calibration.validation else None
    if validation is not None:
        rule = (f"on validation faces that score {t:.2f} or more ({validation.coverage:.0%} of them) {model} is "
                f"{validation.accuracy:.0%} accurate")
    if face.is_uncertain(model):
        return f"Face {number}: **uncertain**: {model}'s top score, {emotion} {p:.2f}, is below {t:.2f}; {rule}."
    return f"Face {number}: **{emotion}** {p:.2f}, at or above {model}'s threshold of {t:.2f}; {rule}."


def agreement(face: Face, models: list[str]) -> str:
    """Each model's top emotion and score on a face, saying whether they disagree:
    "The models disagree: custom_cnn: sad 0.46, vgg16: neutral 0.51"."""
    tops = {m: face.top(m) for m in models if m in face.scores}
    named = ", ".join(f"{m}: {e} {p:.2f}" + (" (uncertain)" if face.is_uncertain(m) else "")
                      for m, (e, p) in tops.items())
    if len(tops) < 2:
        return f"One model, nothing to compare: {named}."
    if len({e for e, _ in tops.values()}) > 1:
        return f"The models disagree: {named}."
    return f"The models agree: {named}."


def detection_note(result: ImageResult) -> str:
    """Which detector found the faces and how sure it is of each, in reading order: "Detector: mtcnn;
    confidence that each is a face: face 1 1.00, face 2 0.99, levelled by -11°." (Haar gives none.)"""
    if not result.faces or result.whole_image:
        return f"Detector: {result.detector}."
    parts = []
    for i, face in enumerate(result.faces, start=1):
        part = f"face {i} " + ("(no confidence: this detector gives none)" if face.confidence is None
                                else f"{face.confidence:.2f}")
        if face.levelled_by is not None and abs(face.levelled_by) >= 1:
            part += f", levelled by {face.levelled_by:+.0f}°"
        parts.append(part)
    return f"Detector: {result.detector}; confidence that each is a face: {', '.join(parts)}."


def face_caption(face: Face, number: int, model: str) -> str:
    """A crop's caption: "Face 1: happy 93% (face 0.99)"."""
    confidence = "" if face.confidence is None else f" (face {face.confidence:.2f})"
    return f"Face {number}: {face_label(face, model)}{confidence}"


def enlarge(crop: np.ndarray, size: int = 144) -> np.ndarray:
    """A 48x48 face crop scaled up for display."""
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_NEAREST)


def sorted_scores(face: Face, model: str) -> dict[str, float]:
    return dict(sorted(face.scores[model].items(), key=lambda kv: kv[1], reverse=True))


def compare_figure(face: Face, accuracies: dict[str, float] | None = None, members: list[str] | None = None):
    """Grouped bar chart: every model's seven scores for one face (legend shows test accuracy, and the
    ensemble's ``members``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(face.scores)
    width = 0.8 / max(1, len(models))
    x = np.arange(len(EMOTIONS))
    fig, ax = plt.subplots(figsize=(7, 2.8))
    for k, model in enumerate(models):
        acc = (accuracies or {}).get(model)
        label = f"{model} (test acc {acc:.1%})" if acc is not None else model
        if model == ENSEMBLE and members:
            label += f" (mean of {' + '.join(members)})"
        ax.bar(x + (k - (len(models) - 1) / 2) * width, [face.scores[model][e] for e in EMOTIONS], width,
               label=label)
    ax.set_xticks(x, EMOTIONS)
    ax.set_ylim(0, 1)
    ax.set_ylabel("probability")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def leaderboard_rows(entries) -> tuple[list[str], list[list]]:
    """Headers and rows of the zoo leaderboard, best accuracy first, from each entry's metrics.json."""
    headers = ["model", "architecture", "accuracy", "macro F1", *[f"F1 {e}" for e in EMOTIONS],
               "parameters", "size (MB)", "CPU latency (ms)", "temperature", "ECE (calibrated)", "uncertain below"]
    rows = []
    for e in sorted(entries, key=lambda e: e.metrics["test"]["accuracy"], reverse=True):
        m = e.metrics
        test = m["test"]
        latency = m.get("latency_ms")
        calibration = m.get("calibration") or {}
        ece = ((calibration.get("test") or {}).get("calibrated") or {}).get("ece")
        rows.append([e.name, e.architecture, round(test["accuracy"], 4), round(test["macro_f1"], 4),
                     *[round(test["per_class"][em]["f1"], 3) for em in EMOTIONS],
                     m["parameters"], round(m["size_bytes"] / 1e6, 1),
                     round(latency, 2) if latency is not None else None,
                     calibration.get("temperature"), round(ece, 4) if ece is not None else None,
                     calibration.get("uncertain_threshold")])
    return headers, rows


def side_by_side(images: list[np.ndarray], captions: list[str], gap: int = 8) -> np.ndarray:
    """RGB images of equal height in a row, each with its caption underneath."""
    h = images[0].shape[0]
    tiles = []
    for image, caption in zip(images, captions):
        tile = np.full((h + 28, image.shape[1], 3), 255, np.uint8)
        tile[:h] = image
        cv2.putText(tile, caption, (4, h + 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        tiles.append(tile)
        tiles.append(np.full((h + 28, gap, 3), 255, np.uint8))
    return np.concatenate(tiles[:-1], axis=1)


def timeline_figure(result, face_ids: list[int] | None = None, max_faces: int = 8):
    """The seven scores of each face over time, one panel per face (a fer.video.VideoResult; ``face_ids``
    picks faces, by default the ``max_faces`` seen in the most sampled frames, in order of id)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summaries = result.summaries()
    if face_ids is None:
        face_ids = sorted(s.face_id for s in sorted(summaries, key=lambda s: -s.samples)[:max_faces])
    dominant = {s.face_id: s.dominant for s in summaries}
    fig, axes = plt.subplots(len(face_ids), 1, figsize=(8.5, 0.6 + 2.2 * len(face_ids)), sharex=True, squeeze=False)
    for ax, face_id in zip(axes[:, 0], face_ids):
        samples = result.samples_of(face_id)
        times = [s.time_s for s in samples]
        for emotion in EMOTIONS:
            ax.plot(times, [s.scores[emotion] for s in samples], marker="." if len(samples) < 30 else None,
                    label=emotion, linewidth=2.2 if emotion == dominant[face_id] else 1.0)
        ax.set_ylim(0, 1)
        ax.set_ylabel("probability")
        ax.set_title(f"Face {face_id}: mostly {dominant[face_id]} ({_frames(len(samples))}, {result.model})", fontsize=10)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axes[-1, 0].set_xlabel("time (s)")
    fig.tight_layout()
    return fig


def video_summary(result) -> str:
    """Markdown: one line per face of a fer.video.VideoResult, with when it was seen and its dominant emotion."""
    lines = [f"{len(result.face_ids)} face(s) in {len(result.frames)} sampled frames ({result.detector} detector, "
             f"{result.model})" + (f", {len(result.cuts)} cut(s)" if result.cuts else "")
             + (" — **stopped at the frame limit**" if result.truncated else "") + "."]
    for s in result.summaries():
        lines.append(f"- Face {s.face_id}: **{s.dominant}** (mean {s.mean_scores[s.dominant]:.2f}), seen "
                     f"{s.first_s:.1f}-{s.last_s:.1f} s in {_frames(s.samples)}")
    return "\n".join(lines)


def write_annotated_video(result, out: str | Path) -> Path:
    """The clip of a fer.video.VideoResult again, with each face's box, id and top emotion drawn on it (a
    sampled frame's faces stay on screen until the next sampled frame), as VP8 WebM, which browsers play."""
    from fer.errors import VideoError
    from fer.video import read_frames

    out = Path(out).with_suffix(".webm")
    by_frame: dict[int, list] = {}
    for sample in result.samples:
        by_frame.setdefault(sample.frame, []).append(sample)
    sampled_frames = set(result.frames)
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"VP80"), result.info.fps,
                             (result.info.width, result.info.height))
    if not writer.isOpened():
        raise VideoError(f"Could not write {out}: this OpenCV build has no VP8 encoder; leave out --annotate.")
    shown: list = []
    try:
        for frame in read_frames(result.source, max_side=max(result.info.width, result.info.height)):
            if frame.index in sampled_frames:
                shown = by_frame.get(frame.index, [])
            image = frame.rgb.copy()
            for sample in shown:
                emotion, p = sample.top
                draw_label(image, sample.box, f"{sample.face_id}: {emotion} {p:.0%}", sample.face_id - 1)
            writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    return out


def _frames(n: int) -> str:
    return f"{n} frame{'s' * (n != 1)}"
