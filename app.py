"""Gradio demo: find every face in a photo and score seven emotions with the zoo's models.

    python app.py          # http://127.0.0.1:7860 (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT override)
    python app.py --mcp    # and an MCP server at /gradio_api/mcp/ with three tools: classify_faces,
                           # compare_models, list_models (the named API endpoints; UI handlers are private)

This file only wires Gradio components to library calls; everything it shows is computed in ``fer``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from fer.logs import quiet_tensorflow, verbose_requested

quiet_tensorflow(verbose_requested())  # before anything imports TensorFlow

import gradio as gr  # noqa: E402
from gradio.data_classes import FileData  # noqa: E402

from fer.ensemble import ENSEMBLE  # noqa: E402
from fer.errors import FerError  # noqa: E402
from fer.faces import DEFAULT_DETECTOR, DETECTORS, load_detector  # noqa: E402
from fer.inference import Recognizer  # noqa: E402
from fer.render import (  # noqa: E402
    agreement,
    annotate,
    compare_figure,
    detection_note,
    enlarge,
    face_caption,
    leaderboard_rows,
    side_by_side,
    sorted_scores,
    timeline_figure,
    verdict,
    video_summary,
)
from fer.video import VIDEO_DETECTOR, analyze_video, probe_video  # noqa: E402
from fer.zoo import default_zoo_dir, list_entries, read_manifest, summarize_zoo  # noqa: E402

ENTRIES = list_entries()
RECOGNIZER = Recognizer.from_zoo()  # models load once, at start-up
load_detector(DEFAULT_DETECTOR)  # and so does the default face detector
MODELS = RECOGNIZER.model_names
DEFAULT_MODEL = ENSEMBLE if RECOGNIZER.has_ensemble else MODELS[0]
ACCURACIES = {name: m["metrics"]["accuracy"] for name, m in read_manifest().items()}
EXAMPLES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "examples")
EXAMPLES = sorted(os.path.join(EXAMPLES_DIR, f) for f in os.listdir(EXAMPLES_DIR)) if os.path.isdir(EXAMPLES_DIR) else []


DETECTOR_NAMES = list(DETECTORS)


def _analyze(image, detector: str, whole_image: bool):
    if image is None:
        raise gr.Error("Upload a photo, take one with the webcam or paste one first.")
    try:
        return RECOGNIZER.predict(image, models="all", whole_image_if_no_face=whole_image, detector=detector)
    except FerError as e:
        raise gr.Error(str(e)) from None


def _face_index(result, face_name: str | None) -> int:
    index = int(face_name.split()[-1]) - 1 if face_name else 0
    return min(index, len(result.faces) - 1)


def _face_view(result, model: str, face_name: str | None):
    """Everything that depends on the selected face and model: the photo with that face highlighted, its
    scores and verdict (uncertain or not), the all-models chart with the line naming where the models
    disagree, and an empty Grad-CAM panel (it explained another face or model)."""
    if result is None or not result.faces:
        return None, {}, "", None, "", None
    index = _face_index(result, face_name)
    face = result.faces[index]
    return (annotate(result, model, selected=index), sorted_scores(face, model),
            verdict(face, model, RECOGNIZER.calibrations.get(model), index + 1), compare_figure(face, ACCURACIES, RECOGNIZER.ensemble_members),
            agreement(face, list(RECOGNIZER.models)), None)


def analyze(image, model: str, detector: str, whole_image: bool):
    """UI handler: every panel of the Photo tab, recomputed for this photo (none keeps the last photo's)."""
    result = _analyze(image, detector, whole_image)
    if not result.faces:
        message = (f"No face found by {detector}. Tick **Score the whole image if no face is found** to score it "
                   "anyway (useful for pre-cropped faces such as FER-2013's), or try another detector.")
        return result.image, message, gr.update(choices=[], value=None), {}, "", None, "", [], None, result
    names = [f"Face {i + 1}" for i in range(len(result.faces))]
    crops = [(enlarge(f.crop, 96), face_caption(f, i + 1, model)) for i, f in enumerate(result.faces)]
    annotated, scores, face_verdict, figure, models_line, cam = _face_view(result, model, names[0])
    note = "No face was detected; the whole image was scored as one face." if result.whole_image else \
        f"Found {len(result.faces)} face{'s' * (len(result.faces) > 1)}, numbered in reading order."
    note += " " + detection_note(result)
    if uncertain := sum(f.is_uncertain(model) for f in result.faces):
        note += f" {model} is uncertain about {uncertain} of them."
    return (annotated, note, gr.update(choices=names, value=names[0]), scores, face_verdict, figure, models_line,
            crops, cam, result)


def select_face(result, model: str, face_name: str | None):
    return _face_view(result, model, face_name)


def explain(result, model: str, face_name: str | None):
    """Grad-CAM of the selected face for the selected model (every member for the ensemble)."""
    from fer.explain import explain_model, overlay
    from fer.labels import EMOTIONS

    if result is None or not result.faces:
        raise gr.Error("Analyze a photo with at least one face first.")
    names = [model] if model != ENSEMBLE else RECOGNIZER.ensemble_members
    face = result.faces[_face_index(result, face_name)]
    images, captions = [], []
    for name in names:
        try:
            cam, cls = explain_model(name, face.crop)
        except FerError as e:
            raise gr.Error(str(e)) from None
        images.append(overlay(face.crop, cam, size=160))
        captions.append(f"{name}: {EMOTIONS[cls]}")
    return side_by_side(images, captions)


def live(frame, model: str, detector: str):
    """Webcam stream handler: boxes and the largest face's scores, updated as the face changes."""
    if frame is None:
        return None, {}
    try:
        result = RECOGNIZER.predict(frame, models=[model], detector=detector)
    except FerError:
        return frame, {}
    if not result.faces:
        return result.image, {}
    largest = max(range(len(result.faces)), key=lambda i: result.faces[i].box.w * result.faces[i].box.h)
    return annotate(result, model, selected=largest), sorted_scores(result.faces[largest], model)


# A clip's cost is bounded: longer clips are refused, and at most VIDEO_MAX_FRAMES frames are scored. One clip
# is analysed at a time (the "video" concurrency group), so clips never take the photo tab's workers.
VIDEO_MAX_SECONDS = float(os.environ.get("FER_VIDEO_MAX_SECONDS", "120"))
VIDEO_MAX_FRAMES = int(os.environ.get("FER_VIDEO_MAX_FRAMES", "300"))
CLIP_OUTPUTS = tempfile.TemporaryDirectory(prefix="fer_video_")  # removed when the app stops


def analyze_clip(clip, model: str, detector: str, frames_per_second: float,
                 progress=gr.Progress()):  # noqa: B008 (Gradio finds its progress bar by this default)
    """UI handler of the Video tab: the faces' timelines, one line per face (its dominant emotion) and the CSV
    (one row per face per sampled frame)."""
    if clip is None:
        raise gr.Error("Upload a video clip first.")
    try:
        info = probe_video(clip)
        if info.duration_s > VIDEO_MAX_SECONDS:
            raise gr.Error(f"The clip is {info.duration_s:.0f} s long; this demo takes clips of up to "
                           f"{VIDEO_MAX_SECONDS:.0f} s: cut it shorter, or run python -m fer video on it.")
        result = analyze_video(clip, RECOGNIZER, model, fps=frames_per_second, detector=detector,
                               max_frames=VIDEO_MAX_FRAMES,
                               progress=lambda done, total: progress((done, total), desc="frames", unit="frames"))
    except FerError as e:
        raise gr.Error(str(e)) from None
    # Gradio copies the file into its own cache (emptied by delete_cache); this copy goes when the app stops.
    csv_path = result.write_csv(Path(tempfile.mkdtemp(dir=CLIP_OUTPUTS.name)) / f"{Path(clip).stem}_faces.csv")
    return timeline_figure(result), video_summary(result), str(csv_path)


# The three functions below are the named API endpoints and, with --mcp, the MCP tools (named after the
# functions); their docstrings are the tools' descriptions, so they say what an agent must pass and gets back.
def classify_faces(image: FileData, model: str = DEFAULT_MODEL, detector: str = DEFAULT_DETECTOR) -> list[dict]:
    """Find every face in a photo and score seven facial expressions (the FER-2013 labels) with one model of the zoo; an expression is not a feeling.

    Args:
        image: the photo (JPEG, PNG, WebP, BMP or GIF, at most 25 MB): an http(s) URL, or a data URL such as "data:image/jpeg;base64,...".
        model: a model's name from list_models; "ensemble" (the default when the zoo has two or more models) averages the members chosen on validation (list_models gives them).
        detector: the face detector, "mtcnn" (default: accurate, levels tilted faces) or "haar" (fast).

    Returns:
        One item per face, in reading order (rows top to bottom, left to right); an empty list when no face is found: {"box": [x, y, w, h] in the photo's pixels, "detector": the detector's name, "confidence": the detector's confidence that it is a face (null: the detector gives none), "scores": {emotion: calibrated probability, the seven summing to 1}, "uncertain": whether the top score is below the model's validated threshold, so the answer should be reported as uncertain (null: the model has none)}.
    """
    try:
        result = RECOGNIZER.predict(image["path"], models=[model], detector=detector)
    except FerError as e:
        raise gr.Error(str(e)) from None
    return [{"box": f.original_box, "detector": result.detector, "confidence": f.confidence,
             "scores": f.scores[model], "uncertain": f.uncertain[model]} for f in result.faces]


def compare_models(image: FileData, detector: str = DEFAULT_DETECTOR) -> list[dict]:
    """Find every face in a photo and score seven facial expressions with every model of the zoo (and the ensemble), to see where the models agree.

    Args:
        image: the photo (JPEG, PNG, WebP, BMP or GIF, at most 25 MB): an http(s) URL, or a data URL such as "data:image/jpeg;base64,...".
        detector: the face detector, "mtcnn" (default: accurate, levels tilted faces) or "haar" (fast).

    Returns:
        One item per face, in reading order (rows top to bottom, left to right): {"box": [x, y, w, h], "detector": the detector's name, "confidence": the detector's confidence (null: none given), "scores": {model: {emotion: calibrated probability}}, "uncertain": {model: bool or null}}.
    """
    try:
        result = RECOGNIZER.predict(image["path"], models="all", detector=detector)
    except FerError as e:
        raise gr.Error(str(e)) from None
    return [{"detector": result.detector, **f.to_dict()} for f in result.faces]


def list_models() -> list[dict]:
    """List the models of the zoo that classify_faces and compare_models can use, to choose one.

    Returns:
        One item per model: {"name": what to pass as classify_faces' model, "architecture": the network (for the ensemble: what it averages), "test_accuracy": accuracy on the FER-2013 test split (null: not measured), "test_macro_f1": macro-averaged F1 on it (null: not measured), "temperature": the calibration temperature its scores are divided by (null: uncalibrated), "uncertain_threshold": the top score below which a face is called uncertain (null: none), "members": the models the ensemble averages (null for the others)}.
    """
    served = set(MODELS)
    return [m.to_dict() for m in summarize_zoo() if m.name in served]


CSS = """
#annotated img, #photo-input img { object-fit: contain; }
#crops .thumbnail-item { max-width: 96px; }
"""

# delete_cache: uploads and results older than an hour leave Gradio's cache (checked hourly).
with gr.Blocks(title="Facial emotion recognition: FER-2013 model zoo", delete_cache=(3600, 3600)) as demo:
    gr.Markdown("# Facial emotion recognition\nUpload a photo, take one with the webcam or paste one: every face "
                "is found and scored for seven emotions by models trained on FER-2013. A facial expression "
                "is not a feeling; see the model cards for limits.")
    state = gr.State(None)
    with gr.Tab("Photo"):
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=320):
                # image_mode=None hands the file over untouched: fer.faces decodes it (EXIF, 16-bit, CMYK ...).
                image_in = gr.Image(sources=["upload", "webcam", "clipboard"], type="filepath", image_mode=None,
                                    label="Photo", elem_id="photo-input", height=320)
                with gr.Row():
                    model_in = gr.Dropdown(MODELS, value=DEFAULT_MODEL, label="Model", scale=2, min_width=140)
                    detector_in = gr.Dropdown(DETECTOR_NAMES, value=DEFAULT_DETECTOR, label="Face detector", scale=1,
                                              min_width=110, elem_id="detector",
                                              info="mtcnn: accurate, levels tilted faces; haar: fast")
                    run_btn = gr.Button("Analyze", variant="primary", elem_id="analyze", scale=1, min_width=100)
                whole_in = gr.Checkbox(False, label="Score the whole image if no face is found")
            with gr.Column(scale=1, min_width=320):
                annotated_out = gr.Image(label="Faces found (selected face: yellow outline)", type="numpy",
                                         interactive=False, elem_id="annotated", height=320)
                status_out = gr.Markdown(elem_id="status")
                face_in = gr.Radio([], label="Face", interactive=True, elem_id="face-picker")
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=320):
                scores_out = gr.Label(num_top_classes=7, label="Calibrated scores of the selected face (selected model)",
                                      elem_id="scores")
                verdict_out = gr.Markdown(elem_id="verdict")
            with gr.Column(scale=1, min_width=320):
                compare_out = gr.Plot(label="All models on the selected face (calibrated scores)", elem_id="compare")
                agreement_out = gr.Markdown(elem_id="disagreement")
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=320):
                crops_out = gr.Gallery(label="Face crops (48x48, as the models see them)", columns=8, height=150,
                                       object_fit="contain", allow_preview=False, elem_id="crops")
            with gr.Column(scale=1, min_width=320):
                explain_btn = gr.Button("Explain the selected face (Grad-CAM)", elem_id="explain-button")
                explain_out = gr.Image(label="Grad-CAM: where the model looked (red: most)", height=220,
                                       interactive=False, elem_id="explain")
        examples_slot = gr.Column(elem_id="examples")

    with gr.Tab("Live webcam"):
        with gr.Row():
            live_in = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Webcam", elem_id="live-input")
            with gr.Column():
                live_model = gr.Dropdown(MODELS, value=MODELS[0], label="Model")
                live_detector = gr.Dropdown(DETECTOR_NAMES, value=DEFAULT_DETECTOR, label="Face detector")
                live_img = gr.Image(label="Faces", interactive=False)
                live_scores = gr.Label(num_top_classes=7, label="Largest face", elem_id="live-scores")
    with gr.Tab("Video"):
        gr.Markdown(f"Upload a clip: faces are found in the sampled frames, each person is followed with one id "
                    f"(a cut starts new ids) and scored over time. Clips up to {VIDEO_MAX_SECONDS:.0f} s and 25 MB; "
                    f"at most {VIDEO_MAX_FRAMES} frames are scored, one clip at a time (others wait in the queue).")
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=320):
                clip_in = gr.Video(sources=["upload"], label="Clip", elem_id="video-input", height=280)
                with gr.Row():
                    clip_model = gr.Dropdown(MODELS, value=MODELS[0], label="Model", min_width=140)
                    clip_detector = gr.Dropdown(DETECTOR_NAMES, value=VIDEO_DETECTOR, label="Face detector",
                                                min_width=110, info="haar: fast; mtcnn: accurate, slower")
                clip_fps = gr.Slider(1, 25, value=5, step=1, label="Frames scored per second of video")
                clip_btn = gr.Button("Analyze the clip", variant="primary", elem_id="analyze-video")
            with gr.Column(scale=1, min_width=320):
                clip_summary = gr.Markdown(elem_id="video-summary")
                clip_csv = gr.File(label="Every face in every sampled frame (CSV)", elem_id="video-csv")
        clip_plot = gr.Plot(label="Scores over time, one panel per face", elem_id="video-timeline")
        clip_btn.click(analyze_clip, [clip_in, clip_model, clip_detector, clip_fps], [clip_plot, clip_summary, clip_csv],
                       concurrency_limit=1, concurrency_id="video", api_visibility="private")
    with gr.Tab("Model zoo"):
        headers, rows = leaderboard_rows(ENTRIES)
        evaluated = ", ".join(sorted({f"{e.test.split}, {e.test.n:,} faces" for e in ENTRIES}))
        gr.Markdown(f"Test split of FER-2013 ({evaluated}). Rerun any number with "
                    "`python -m fer evaluate --model NAME --data PATH`.")
        gr.Dataframe(value=rows, headers=headers, interactive=False, label="Leaderboard")
        matrices = {e.name: str(e.path / "confusion_matrix.png") for e in ENTRIES
                    if (e.path / "confusion_matrix.png").exists()}
        if matrices:
            matrix_model = gr.Dropdown(list(matrices), value=next(iter(matrices)), label="Confusion matrix of")
            matrix_out = gr.Image(next(iter(matrices.values())), label="Confusion matrix (rows: true class)",
                                  interactive=False, height=620, elem_id="confusion-matrix")
            matrix_model.change(lambda name: matrices[name], matrix_model, matrix_out, api_visibility="private")
        if (default_zoo_dir() / "reliability.png").exists():
            gr.Image(str(default_zoo_dir() / "reliability.png"), interactive=False, elem_id="reliability",
                     label="Reliability on the test split: accuracy against top score, raw and calibrated "
                           "(on the diagonal: a score means what it says)")

    panels = [annotated_out, status_out, face_in, scores_out, verdict_out, compare_out, agreement_out, crops_out,
              explain_out, state]
    with examples_slot:
        if EXAMPLES:  # a click on an example fills the photo and runs the analysis at once
            gr.Examples([[path] for path in EXAMPLES], inputs=[image_in], outputs=panels,
                        fn=lambda image: analyze(image, DEFAULT_MODEL, DEFAULT_DETECTOR, False), run_on_click=True,
                        cache_examples=False, label="Examples: faces from the FER-2013 test split")
    run_btn.click(analyze, [image_in, model_in, detector_in, whole_in], panels, api_visibility="private")
    face_view = [annotated_out, scores_out, verdict_out, compare_out, agreement_out, explain_out]
    face_in.change(select_face, [state, model_in, face_in], face_view, api_visibility="private")
    model_in.change(select_face, [state, model_in, face_in], face_view, api_visibility="private")
    explain_btn.click(explain, [state, model_in, face_in], explain_out, api_visibility="private")
    live_in.stream(live, [live_in, live_model, live_detector], [live_img, live_scores], stream_every=0.5, time_limit=120,
                   api_visibility="private")

    # Named API endpoints, typed from the functions' signatures (see the README for a gradio_client snippet).
    gr.api(classify_faces, api_name="predict")
    gr.api(compare_models, api_name="compare")
    gr.api(list_models, api_name="models")

# Requests beyond the queue get a "queue is full" answer at once instead of waiting without end.
demo.queue(max_size=int(os.environ.get("FER_MAX_QUEUE", "64")),
           default_concurrency_limit=int(os.environ.get("FER_CONCURRENCY", "2")))

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="The facial emotion recognition demo.")
    parser.add_argument("--mcp", action="store_true",
                        help="also serve the API as MCP tools at /gradio_api/mcp/ (default: GRADIO_MCP_SERVER decides)")
    args = parser.parse_args()
    demo.launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"), max_file_size="25mb", show_error=True,
                css=CSS, mcp_server=True if args.mcp else None,
                server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
