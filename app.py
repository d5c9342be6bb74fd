"""Gradio demo: find every face in a photo and score seven emotions with the zoo's models.

    python app.py          # http://127.0.0.1:7860 (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT override)

This file only wires Gradio components to library calls; everything it shows is computed in ``fer``.
"""

from __future__ import annotations

import os

from fer.logs import quiet_tensorflow, verbose_requested

quiet_tensorflow(verbose_requested())  # before anything imports TensorFlow

import gradio as gr  # noqa: E402
from gradio.data_classes import FileData  # noqa: E402

from fer.ensemble import ENSEMBLE  # noqa: E402
from fer.errors import FerError  # noqa: E402
from fer.inference import Recognizer  # noqa: E402
from fer.render import annotate, compare_figure, enlarge, leaderboard_rows, side_by_side, sorted_scores  # noqa: E402
from fer.zoo import list_entries, read_manifest  # noqa: E402

ENTRIES = list_entries()
RECOGNIZER = Recognizer.from_zoo()  # models load once, at start-up
MODELS = RECOGNIZER.model_names
DEFAULT_MODEL = ENSEMBLE if RECOGNIZER.has_ensemble else MODELS[0]
ACCURACIES = {name: m["metrics"]["accuracy"] for name, m in read_manifest().items()}
EXAMPLES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "examples")
EXAMPLES = sorted(os.path.join(EXAMPLES_DIR, f) for f in os.listdir(EXAMPLES_DIR)) if os.path.isdir(EXAMPLES_DIR) else []


def _analyze(image, whole_image: bool):
    if image is None:
        raise gr.Error("Upload a photo, take one with the webcam or paste one first.")
    try:
        return RECOGNIZER.predict(image, models="all", whole_image_if_no_face=whole_image)
    except FerError as e:
        raise gr.Error(str(e)) from None


def _face_view(result, model: str, index: int):
    if result is None or not result.faces:
        return {}, None
    face = result.faces[min(index, len(result.faces) - 1)]
    return sorted_scores(face, model), compare_figure(face, ACCURACIES)


def analyze(image, model: str, whole_image: bool):
    """UI handler: annotated photo, face crops, face picker, scores, comparison, status."""
    result = _analyze(image, whole_image)
    if not result.faces:
        message = ("No face found. Tick **Classify the whole image as one face** to score it anyway "
                   "(useful for pre-cropped faces such as FER-2013's).")
        return result.image, [], gr.update(choices=[], value=None), {}, None, message, None
    names = [f"Face {i + 1}" for i in range(len(result.faces))]
    crops = [(enlarge(f.crop), f"{n}: {f.top(model)[0]}") for n, f in zip(names, result.faces)]
    scores, figure = _face_view(result, model, 0)
    note = "No face was detected; the whole image was classified as one face." if result.whole_image else \
        f"Found {len(result.faces)} face{'s' * (len(result.faces) > 1)}."
    return (annotate(result, model), crops, gr.update(choices=names, value=names[0]), scores, figure, note, result)


def select_face(result, model: str, face_name: str | None):
    index = int(face_name.split()[-1]) - 1 if face_name else 0
    return _face_view(result, model, index)


def switch_model(result, model: str, face_name: str | None):
    if result is None or not result.faces:
        return None, {}, None
    scores, figure = select_face(result, model, face_name)
    return annotate(result, model), scores, figure


def explain(result, model: str, face_name: str | None):
    """Grad-CAM of the selected face for the selected model (every zoo model for the ensemble)."""
    from fer.explain import explain_model, overlay
    from fer.labels import EMOTIONS

    if result is None or not result.faces:
        raise gr.Error("Analyze a photo with at least one face first.")
    names = [model] if model != ENSEMBLE else list(RECOGNIZER.models)
    face = result.faces[int(face_name.split()[-1]) - 1 if face_name else 0]
    images, captions = [], []
    for name in names:
        try:
            cam, cls = explain_model(name, face.crop)
        except FerError as e:
            raise gr.Error(str(e)) from None
        images.append(overlay(face.crop, cam))
        captions.append(f"{name}: {EMOTIONS[cls]}")
    return side_by_side(images, captions)


def live(frame, model: str):
    """Webcam stream handler: boxes and the largest face's scores, updated as the face changes."""
    if frame is None:
        return None, {}
    try:
        result = RECOGNIZER.predict(frame, models=[model])
    except FerError:
        return frame, {}
    if not result.faces:
        return result.image, {}
    return annotate(result, model), sorted_scores(result.faces[0], model)


def predict_api(image: FileData, model: str = DEFAULT_MODEL) -> list[dict]:
    """Find every face in a photo and score seven emotions with one model.

    Args:
        image: the photo (JPEG, PNG, WebP, BMP or GIF).
        model: a zoo model's name, or "ensemble" when the zoo has two or more models.

    Returns:
        One item per face, largest first: {"box": [x, y, w, h] in the photo's pixels, "scores": {emotion: probability}}.
    """
    try:
        result = RECOGNIZER.predict(image["path"], models=[model])
    except FerError as e:
        raise gr.Error(str(e)) from None
    return [{"box": f.original_box, "scores": f.scores[model]} for f in result.faces]


def compare_api(image: FileData) -> list[dict]:
    """Find every face in a photo and score seven emotions with every model of the zoo (and the ensemble).

    Args:
        image: the photo (JPEG, PNG, WebP, BMP or GIF).

    Returns:
        One item per face, largest first: {"box": [x, y, w, h], "scores": {model: {emotion: probability}}}.
    """
    try:
        result = RECOGNIZER.predict(image["path"], models="all")
    except FerError as e:
        raise gr.Error(str(e)) from None
    return [f.to_dict() for f in result.faces]


with gr.Blocks(title="Facial emotion recognition: FER-2013 model zoo") as demo:
    gr.Markdown("# Facial emotion recognition\nUpload a photo, take one with the webcam or paste one: every face "
                "is found and scored for seven emotions by models trained on FER-2013. A facial expression "
                "is not a feeling; see the model cards for limits.")
    state = gr.State(None)
    with gr.Tab("Photo"):
        with gr.Row():
            with gr.Column(scale=1):
                # image_mode=None hands the file over untouched: fer.faces decodes it (EXIF, 16-bit, CMYK ...).
                image_in = gr.Image(sources=["upload", "webcam", "clipboard"], type="filepath", image_mode=None,
                                    label="Photo", elem_id="photo-input")
                model_in = gr.Dropdown(MODELS, value=DEFAULT_MODEL, label="Model")
                whole_in = gr.Checkbox(False, label="Classify the whole image as one face if none is found")
                run_btn = gr.Button("Analyze", variant="primary", elem_id="analyze")
                examples_slot = gr.Column(elem_id="examples")
            with gr.Column(scale=1):
                annotated_out = gr.Image(label="Faces found", type="numpy", interactive=False, elem_id="annotated")
                status_out = gr.Markdown(elem_id="status")
                crops_out = gr.Gallery(label="Face crops (48x48, as the models see them)", columns=6, height="auto",
                                       object_fit="contain", allow_preview=False)
        with gr.Row():
            face_in = gr.Dropdown([], label="Face", interactive=True)
            scores_out = gr.Label(num_top_classes=7, label="Scores (selected model)", elem_id="scores")
        compare_out = gr.Plot(label="All models on the selected face")
        with gr.Row():
            explain_btn = gr.Button("Explain (Grad-CAM)", elem_id="explain-button")
        explain_out = gr.Image(label="Grad-CAM: where the model looked (red: most)", height=260,
                               interactive=False, elem_id="explain")

    with gr.Tab("Live webcam"):
        with gr.Row():
            live_in = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Webcam", elem_id="live-input")
            with gr.Column():
                live_model = gr.Dropdown(MODELS, value=MODELS[0], label="Model")
                live_img = gr.Image(label="Faces", interactive=False)
                live_scores = gr.Label(num_top_classes=7, label="Largest face", elem_id="live-scores")
    with gr.Tab("Model zoo"):
        headers, rows = leaderboard_rows(ENTRIES)
        evaluated = ", ".join(sorted({f"{e.test.split}, {e.test.n:,} faces" for e in ENTRIES}))
        gr.Markdown(f"Test split of FER-2013 ({evaluated}). Rerun any number with "
                    "`python -m fer evaluate --model NAME --data PATH`.")
        gr.Dataframe(value=rows, headers=headers, interactive=False, label="Leaderboard")
        gr.Gallery([(str(e.path / "confusion_matrix.png"), e.name) for e in ENTRIES
                    if (e.path / "confusion_matrix.png").exists()], label="Confusion matrices", columns=3,
                   height="auto", object_fit="contain", allow_preview=True)

    outputs = [annotated_out, crops_out, face_in, scores_out, compare_out, status_out, state]
    with examples_slot:
        if EXAMPLES:  # a click on an example fills the inputs and runs the analysis at once
            gr.Examples([[path, DEFAULT_MODEL, False] for path in EXAMPLES], inputs=[image_in, model_in, whole_in],
                        outputs=outputs, fn=analyze, run_on_click=True, cache_examples=False,
                        label="Examples (FER-2013 test faces)")
    run_btn.click(analyze, [image_in, model_in, whole_in], outputs, api_visibility="private")
    face_in.change(select_face, [state, model_in, face_in], [scores_out, compare_out], api_visibility="private")
    model_in.change(switch_model, [state, model_in, face_in], [annotated_out, scores_out, compare_out],
                    api_visibility="private")
    explain_btn.click(explain, [state, model_in, face_in], explain_out, api_visibility="private")
    live_in.stream(live, [live_in, live_model], [live_img, live_scores], stream_every=0.5, time_limit=120,
                   api_visibility="private")

    # Named API endpoints, typed from the functions' signatures (see the README for a gradio_client snippet).
    gr.api(predict_api, api_name="predict")
    gr.api(compare_api, api_name="compare")

# Requests beyond the queue get a "queue is full" answer at once instead of waiting without end.
demo.queue(max_size=int(os.environ.get("FER_MAX_QUEUE", "64")),
           default_concurrency_limit=int(os.environ.get("FER_CONCURRENCY", "2")))

if __name__ == "__main__":
    demo.launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"), max_file_size="25mb", show_error=True,
                server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
