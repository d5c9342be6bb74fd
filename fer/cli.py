"""Command line: ``python -m fer evaluate | predict | video | zoo``.

Results go to stdout (with ``--json``, exactly one JSON document); logs go to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from fer.errors import ConfigError, ImageError, ZooError, run_command
from fer.options import ArgumentParser


def _evaluate(args: argparse.Namespace) -> int:
    from fer.data import load_dataset, load_eval_split
    from fer.evaluation import evaluate_scores, score_calibrated
    from fer.logs import quiet_tensorflow

    # The validation slice is the one training selects checkpoints on (TrainConfig's val_fraction and seed).
    split = load_dataset(args.data, val_fraction=args.val_fraction, seed=args.seed).val \
        if args.split == "validation" else load_eval_split(args.data)
    quiet_tensorflow(args.verbose)  # once the data is known to be good: a wrong path fails in a second
    logging.getLogger("fer").info("Evaluating %s on %d faces of %s", args.model, len(split), args.data)
    scores = score_calibrated(args.model, split.images)
    result = evaluate_scores(scores.calibrated, split)
    calibration = scores.report(split.labels, split.source_name)
    if args.json:
        print(json.dumps({**result.to_dict(), "calibration": calibration}, indent=2))
    else:
        print(result.report() + "\n\n" + _calibration_report(calibration))
    return 0


def _calibration_report(block: dict) -> str:
    """The ``calibration`` block of evaluate as text: raw against calibrated scores, and the uncertain threshold."""
    t = block["temperature"]
    temperature = ", ".join(f"{n} {v:.4f}" for n, v in t.items()) if isinstance(t, dict) else f"{t:.4f}"
    unfitted = " (what has no fitted temperature scores with T = 1)" if isinstance(t, dict) else " (not fitted: T = 1)"
    lines = [f"calibration: temperature {temperature}" + ("" if block["fitted"] else unfitted),
             f"{'':>10s} {'accuracy':>9s} {'ECE':>9s} {'NLL':>9s} {'Brier':>9s}"]
    for kind in ("raw", "calibrated"):
        q = block[kind]
        lines.append(f"{kind:>10s} {q['accuracy']:9.4f} {q['ece']:9.4f} {q['nll']:9.4f} {q['brier']:9.4f}")
    if block.get("selective"):
        s = block["selective"]
        lines.append(f"uncertain below {s['threshold']:.2f}: {s['accuracy']:.1%} accuracy on the "
                     f"{s['coverage']:.1%} of faces at or above it")
    return "\n".join(lines)


def _expand_images(paths: list[str]) -> list[str]:
    """Files as given; folders replaced by the image files under them, sorted."""
    from pathlib import Path

    from fer.faces import IMAGE_SUFFIXES

    images = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            images += sorted(str(f) for f in path.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
        else:
            images.append(p)
    return images


def _predict_one(recognizer, image: str, models: list[str], whole_image: bool, detector: str) -> dict:
    item: dict = {"image": image, "detector": detector, "faces": []}
    try:
        result = recognizer.predict(image, models=models, whole_image_if_no_face=whole_image, detector=detector)
        item["faces"] = [face.to_dict() for face in result.faces]
    except ImageError as e:
        item["error"] = str(e)
        logging.getLogger("fer").warning("%s: %s", image, e)
    return item


def _predict_to_csv(recognizer, images: list[str], models: list[str], whole_image: bool, detector: str,
                    out: str) -> int:
    """Stream one row per face and model to ``out``; images already in it are skipped (resume)."""
    import csv
    from pathlib import Path

    from tqdm import tqdm

    from fer.labels import EMOTIONS

    header = ["image", "detector", "face", "x", "y", "w", "h", "confidence", "model", *EMOTIONS, "error"]
    done: set[str] = set()
    if Path(out).exists():
        with open(out, newline="") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames and reader.fieldnames != header:
                raise ConfigError(f"{out} has other columns than this version writes ({', '.join(header)}): "
                                  "write to a new --out file.")
            done = {row["image"] for row in reader}
    todo = [i for i in images if i not in done]
    if done:
        logging.getLogger("fer").info("Resuming %s: %d images done, %d to go", out, len(images) - len(todo), len(todo))
    with open(out, "a", newline="") as f:
        writer = csv.writer(f)
        if not done:
            writer.writerow(header)
        for image in tqdm(todo, desc="images", unit="img"):
            item = _predict_one(recognizer, image, models, whole_image, detector)
            if "error" in item or not item["faces"]:
                writer.writerow([image, detector, "", "", "", "", "", "", "", *[""] * len(EMOTIONS),
                                 item.get("error", "no face")])
            for k, face in enumerate(item["faces"], start=1):
                box = face["box"] or ["", "", "", ""]
                confidence = "" if face["confidence"] is None else f"{face['confidence']:.4f}"
                for model, scores in face["scores"].items():
                    writer.writerow([image, detector, k, *box, confidence, model,
                                     *[f"{scores[e]:.6f}" for e in EMOTIONS], ""])
            f.flush()  # a killed run keeps every finished image
    return 0


def _predict(args: argparse.Namespace) -> int:
    from fer.faces import DEFAULT_DETECTOR, detector_spec
    from fer.inference import Recognizer, zoo_request
    from fer.logs import quiet_tensorflow

    args.detector = args.detector or DEFAULT_DETECTOR
    detector_spec(args.detector)  # an unknown detector or model fails at once, before TensorFlow loads
    names, load = zoo_request(args.model)
    images = _expand_images(args.images)
    quiet_tensorflow(args.verbose)
    recognizer = Recognizer.from_zoo(names=load, freeze=False)  # one command: freezing costs more than it saves
    models = recognizer.resolve(names)
    if args.out:
        return _predict_to_csv(recognizer, images, models, args.whole_image, args.detector, args.out)
    results = [_predict_one(recognizer, image, models, args.whole_image, args.detector) for image in images]
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for item in results:
        if "error" in item:
            print(f"{item['image']}: error: {item['error']}")
            continue
        print(f"{item['image']}: {len(item['faces'])} face(s) ({item['detector']})")
        for i, face in enumerate(item["faces"], start=1):
            confidence = "" if face["confidence"] is None else f", detector confidence {face['confidence']:.2f}"
            print(f"  face {i} at {face['box']}{confidence}")
            for model, scores in face["scores"].items():
                ranked = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)
                print(f"    {model:12s} " + "  ".join(f"{e} {p:.2f}" for e, p in ranked))
    return 0


def _video(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tqdm import tqdm

    from fer.faces import detector_spec
    from fer.inference import Recognizer, zoo_request
    from fer.logs import quiet_tensorflow
    from fer.render import timeline_figure, video_summary, write_annotated_video
    from fer.video import VIDEO_DETECTOR, analyze_video, probe_video
    from fer.zoo import list_entries

    args.detector = args.detector or VIDEO_DETECTOR
    detector_spec(args.detector)  # an unknown detector, model or an unreadable clip fails before TensorFlow loads
    info = probe_video(args.clip)
    local = [e.name for e in list_entries()]
    names, load = zoo_request(args.model or (local[:1] or None))  # one model only
    quiet_tensorflow(args.verbose)
    recognizer = Recognizer.from_zoo(names=load)
    model = recognizer.resolve(names)[0]
    out = Path(args.out or f"{Path(args.clip).stem}_emotions")
    out.mkdir(parents=True, exist_ok=True)
    logging.getLogger("fer").info("%s: %dx%d, %.1f fps, %d frames; writing to %s", args.clip, info.width, info.height,
                                  info.fps, info.frame_count, out)
    with tqdm(desc="frames", unit="frame") as bar:
        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        result = analyze_video(args.clip, recognizer, model, every=args.every, fps=args.fps, detector=args.detector,
                               detect_every=args.detect_every, detect_side=args.detect_side,
                               max_frames=args.max_frames, progress=progress)
    result.write_csv(out / "faces.csv")
    (out / "summary.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    import matplotlib.pyplot as plt

    for face_id in result.face_ids:
        figure = timeline_figure(result, [face_id])
        figure.savefig(out / f"timeline_face_{face_id}.png", dpi=100)
        plt.close(figure)
    if args.annotate:
        write_annotated_video(result, out / "annotated.webm")
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(video_summary(result).replace("**", ""))
        print(f"Wrote {out}/: faces.csv, summary.json, {len(result.face_ids)} timeline_face_N.png"
              + (", annotated.webm" if args.annotate else ""))
    return 0


def _zoo_calibrate(args: argparse.Namespace) -> int:
    from fer.data import load_dataset
    from fer.ensemble import ENSEMBLE, has_ensemble
    from fer.export import calibrate_ensemble, calibrate_entry, common_validation_slice, validation_slice_of
    from fer.zoo import default_zoo_dir, ensemble_members, list_entries

    zoo_dir = default_zoo_dir()
    names = [e.name for e in list_entries(zoo_dir)]
    if args.name == "all":
        wanted = names + ([ENSEMBLE] if has_ensemble(names) else [])
    elif args.name in (*names, ENSEMBLE):
        wanted = [args.name]
    else:
        raise ZooError(f"No zoo entry named {args.name!r}: calibrate one of {', '.join(names) or 'none'}, "
                       f"{ENSEMBLE} or all.")
    datasets: dict[tuple[float, int], object] = {}  # one load per validation slice

    def dataset_for(val_fraction: float, seed: int):
        if (val_fraction, seed) not in datasets:
            datasets[val_fraction, seed] = load_dataset(args.data, val_fraction=val_fraction, seed=seed)
        return datasets[val_fraction, seed]

    fitted = {}
    for name in wanted:
        if name == ENSEMBLE:
            calibration = calibrate_ensemble(zoo_dir, dataset_for(*common_validation_slice(list_entries(zoo_dir))))
        else:
            calibration = calibrate_entry(zoo_dir / name, dataset_for(*validation_slice_of(zoo_dir / name)))
        fitted[name] = _calibration_summary(calibration)
        if name == ENSEMBLE:
            fitted[name]["members"] = ensemble_members(zoo_dir)  # chosen on validation by calibrate_ensemble
        logging.getLogger("fer").info("%s: T = %.4f, uncertain below %.2f", name, calibration.temperature,
                                      calibration.uncertain_threshold)
    print(json.dumps(fitted, indent=2))
    return 0


def _zoo_soup(args: argparse.Namespace) -> int:
    from pathlib import Path

    from fer.soup import soup_entry
    from fer.zoo import default_zoo_dir

    zoo_dir = Path(args.zoo_dir) if args.zoo_dir else default_zoo_dir()
    entry, record = soup_entry(args.name, args.partner, args.data, zoo_dir, Path(args.out) if args.out else None)
    print(json.dumps(record, indent=2))
    if entry is None:
        print(f"The soup scored {record['validation_accuracy']['soup']:.4f} on validation against the entry's "
              f"{record['validation_accuracy']['entry']:.4f}: not kept, {args.name} is unchanged.", file=sys.stderr)
        return 1
    print(f"Wrote {entry}", file=sys.stderr)
    return 0


def _calibration_summary(calibration) -> dict:
    """What ``zoo calibrate`` prints per model: temperature, threshold, and raw vs calibrated on each split."""
    out = {"temperature": calibration.temperature, "uncertain_threshold": calibration.uncertain_threshold}
    for key, measured in (("validation", calibration.validation), ("test", calibration.test)):
        if measured is not None:
            out[key] = {"split": measured.split, "n": measured.n,
                        **{kind: {m: round(getattr(getattr(measured, kind), m), 4)
                                  for m in ("accuracy", "ece", "nll", "brier")} for kind in ("raw", "calibrated")},
                        "coverage": round(measured.selective.coverage, 4),
                        "accuracy_at_or_above_threshold": round(measured.selective.accuracy, 4)}
    return out


def _zoo_list(args: argparse.Namespace) -> int:
    from fer.zoo import list_entries, manifest_records

    if args.json:  # the manifest's records
        print(json.dumps(manifest_records(), indent=2))
        return 0
    entries = list_entries()
    if not entries:
        print("The zoo is empty: train a model with train.py.")
        return 0
    print(f"{'name':14s} {'architecture':14s} {'params':>10s} {'MB':>6s} {'accuracy':>9s} {'macro F1':>9s} "
          f"{'T':>7s}")
    for e in entries:
        m = e.metrics
        temperature = f"{e.calibration.temperature:7.4f}" if e.calibration else f"{'none':>7s}"
        print(f"{e.name:14s} {e.architecture:14s} {m['parameters']:10,d} {m['size_bytes'] / 1e6:6.1f} "
              f"{m['test']['accuracy']:9.4f} {m['test']['macro_f1']:9.4f} {temperature}")
    return 0


def _zoo_push(args: argparse.Namespace) -> int:
    from fer.zoo import push_entry

    info = push_entry(args.name, args.repo_id, token=args.token)
    print(f"Pushed {args.name} to {args.repo_id} at revision {info.oid}; the manifest pins it.")
    return 0


def _zoo_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from fer.ensemble import has_ensemble
    from fer.report import (calibration_table, cost_table, markdown_table, overlap_table, paired_table,
                            selection_table, update_tables, write_report)
    from fer.zoo import default_zoo_dir, ensemble_record, list_entries

    entries = list_entries()
    if not entries:
        raise ZooError("The zoo is empty: train a model with train.py.")
    record = (ensemble_record() if has_ensemble(entries) else None) or {}
    ensemble, selection = record.get("calibration"), record.get("selection")
    paired = overlap = None
    if args.data:
        from fer.data import load_eval_split, load_training_faces, seen_in

        test = load_eval_split(args.data)
        paired = paired_table(entries, test.labels, record)
        training = load_training_faces(args.data)
        if training is not None:
            overlap = overlap_table(entries, test.labels, seen_in(training, test.images), record)
    path = write_report(entries, Path(args.out) if args.out else default_zoo_dir(), ensemble, selection, paired,
                        overlap)
    tables = [markdown_table(entries), *([paired] if paired else []), *([overlap] if overlap else []),
              *([selection_table(selection)] if selection else []), calibration_table(entries, ensemble),
              cost_table(entries)]
    print("\n\n".join(tables))
    logging.getLogger("fer").info("Wrote %s", path)
    if args.readme:
        readme = Path(args.readme)
        readme.write_text(update_tables(readme.read_text(), tables))
        logging.getLogger("fer").info("Updated the tables of %s", readme)
    return 0


def _zoo_export_tflite(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from fer.data import load_dataset
    from fer.evaluation import evaluate_model
    from fer.lite import MAX_ACCURACY_DROP, LiteModel, export_tflite
    from fer.training import TrainConfig, load_run_config
    from fer.zoo import default_zoo_dir, load_model

    entry_dir = default_zoo_dir() / args.name  # an entry keeps its run's config (the ensemble has none)
    config = load_run_config(entry_dir) if (entry_dir / "config.json").exists() else TrainConfig()
    model = load_model(args.name)
    out = export_tflite(model, Path(args.out or f"exports/{args.name}.tflite"))
    # The check runs on the validation slice the model was selected on, never on test.
    val = load_dataset(args.data, val_fraction=config.val_fraction, seed=config.seed).val
    keras_accuracy = evaluate_model(model, val).accuracy
    lite_accuracy = evaluate_model(LiteModel(out), val).accuracy
    result = {"model": args.name, "file": str(out), "size_mb": round(out.stat().st_size / 2**20, 2),
              "validation_faces": len(val), "keras_accuracy": round(keras_accuracy, 4),
              "tflite_accuracy": round(lite_accuracy, 4)}
    if abs(lite_accuracy - keras_accuracy) > MAX_ACCURACY_DROP:
        out.unlink()
        raise ZooError(f"The TFLite export of {args.name} changes validation accuracy from {keras_accuracy:.4f} "
                       f"to {lite_accuracy:.4f} (more than {MAX_ACCURACY_DROP * 100:.1f} point): not kept.")
    print(json.dumps(result, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="python -m fer", description="FER-2013 model zoo tools.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more, TensorFlow's own logs included")
    sub = parser.add_subparsers(dest="command", required=True)

    ev = sub.add_parser("evaluate", help="per-class metrics of a model on a data source's test split")
    ev.add_argument("--model", required=True, help="zoo name, zoo entry folder, .keras or .tflite file")
    ev.add_argument("--data", required=True,
                    help="fer2013.csv (PrivateTest), a folder with train/ and test/ (test/), or an emotion-folder tree (whole)")
    ev.add_argument("--split", choices=("test", "validation"), default="test",
                    help="test (default), or validation: the seeded, stratified slice of train that training "
                         "selects checkpoints on (decide what ships on it, never on test)")
    ev.add_argument("--val-fraction", type=float, default=0.1, help="with --split validation: the slice's size")
    ev.add_argument("--seed", type=int, default=0, help="with --split validation: the slice's seed")
    ev.add_argument("--json", action="store_true", help="print one JSON object instead of the report")
    ev.set_defaults(func=_evaluate)

    pr = sub.add_parser("predict", help="find faces in images and score them")
    pr.add_argument("images", nargs="+", help="image files or folders of them")
    pr.add_argument("--model", default="all", help="a zoo name, ensemble, or all (default)")
    pr.add_argument("--detector", default=None, metavar="NAME",
                    help="face detector: mtcnn (the default: accurate, levels tilted faces by the eyes) or haar "
                         "(fast); fer.faces.DETECTORS lists them")
    pr.add_argument("--whole-image", action="store_true", help="classify the whole image when no face is found")
    pr.add_argument("--json", action="store_true", help="print one JSON list instead of a table")
    pr.add_argument("--out", default=None,
                    help="stream results to this CSV (one row per face and model); rerun to resume")
    pr.set_defaults(func=_predict)

    vi = sub.add_parser("video", help="follow every face through a video clip and score it over time",
                        description="Samples frames, finds faces, follows each with an IoU tracker (one id per "
                                    "person; a cut starts new ids) and scores them in batches. Writes to --out: "
                                    "faces.csv (one row per face per sampled frame), summary.json (the dominant "
                                    "emotion per face), timeline_face_N.png, and with --annotate annotated.webm.")
    vi.add_argument("clip", help="the video file (.mp4, .webm, .mov, .avi, .mkv: whatever OpenCV's FFmpeg reads)")
    vi.add_argument("--model", default=None, help="a zoo name or ensemble (default: the zoo's first model)")
    sampling = vi.add_mutually_exclusive_group()
    sampling.add_argument("--every", type=int, default=None, metavar="N", help="score every N-th frame (default: 1)")
    sampling.add_argument("--fps", type=float, default=None, metavar="F", help="score about F frames per second")
    vi.add_argument("--out", default=None, metavar="DIR", help="output folder (default: CLIP-NAME_emotions)")
    vi.add_argument("--detector", default=None, metavar="NAME",
                    help="face detector: haar (the default for video: fast) or mtcnn (accurate, 2-5x slower)")
    vi.add_argument("--detect-every", type=int, default=1, metavar="K",
                    help="detect faces on every K-th sampled frame only and keep the tracked boxes in between "
                         "(default 1: every sampled frame)")
    vi.add_argument("--detect-side", type=int, default=None, metavar="PX",
                    help="shrink frames to this longest side for detection only (default: the detector's own)")
    vi.add_argument("--max-frames", type=int, default=None, metavar="N", help="stop after N sampled frames")
    vi.add_argument("--annotate", action="store_true", help="also write the clip with boxes, ids and emotions")
    vi.add_argument("--json", action="store_true", help="print the summary as one JSON document")
    vi.set_defaults(func=_video)

    zoo = sub.add_parser("zoo", help="the model zoo")
    zoo_sub = zoo.add_subparsers(dest="zoo_command", required=True)
    zl = zoo_sub.add_parser("list", help="list the zoo's models")
    zl.add_argument("--json", action="store_true")
    zl.set_defaults(func=_zoo_list)
    zp = zoo_sub.add_parser("push", help="upload a zoo entry to the Hugging Face Hub")
    zp.add_argument("name", help="zoo entry to upload")
    zp.add_argument("--repo-id", required=True, help="Hub model repo, USER/REPO")
    zp.add_argument("--token", default=None, help="Hub token (default: HF_TOKEN or the cached login)")
    zp.set_defaults(func=_zoo_push)
    zc = zoo_sub.add_parser("calibrate", help="fit a model's temperature and uncertain threshold on its validation "
                                              "slice (measured on test for the record)")
    zc.add_argument("name", help="zoo entry, ensemble (after its members), or all (every entry, then the ensemble)")
    zc.add_argument("--data", required=True,
                    help="the training data: the entry's validation slice is rebuilt from it (its run's "
                         "--val-fraction and --seed)")
    zc.set_defaults(func=_zoo_calibrate)
    zr = zoo_sub.add_parser("report", help="compare the zoo's models: REPORT.md, F1 heat map, confusion matrices, "
                                           "calibration and reliability diagrams")
    zr.add_argument("--out", default=None, help="folder for the report (default: the zoo folder)")
    zr.add_argument("--data", default=None,
                    help="the data the models were tested on: adds a paired comparison of every two models (McNemar) "
                         "and, where the data has a training split, their accuracy on the test faces also in it "
                         "and on the others")
    zr.add_argument("--readme", default=None, metavar="PATH",
                    help="also replace the tables of this markdown file (e.g. README.md) by the ones printed")
    zr.set_defaults(func=_zoo_report)
    zs = zoo_sub.add_parser("soup", help="average an entry's weights with other weights of its architecture (e.g. "
                                         "the ones its cycle started from); kept only if validation accuracy rises")
    zs.add_argument("name", help="zoo entry")
    zs.add_argument("--with", dest="partner", required=True, metavar="MODEL",
                    help="the other weights: a .keras file or zoo entry folder of the same architecture, normally "
                         "the ones the entry's last cycle started from (its card's reproduce command says so)")
    zs.add_argument("--data", required=True, help="the training data (batch-norm statistics, validation slice, test)")
    zs.add_argument("--zoo-dir", default=None, help="the zoo holding NAME (default: $FER_ZOO_DIR or model_zoo/)")
    zs.add_argument("--out", default=None, help="zoo folder the soup is written to (default: --zoo-dir, replacing NAME)")
    zs.set_defaults(func=_zoo_soup)
    zt = zoo_sub.add_parser("export-tflite", help="export a model to TensorFlow Lite, kept only if accuracy holds")
    zt.add_argument("name", help="zoo entry (or ensemble)")
    zt.add_argument("--data", required=True, help="the training data: accuracy is compared on its validation slice")
    zt.add_argument("--out", default=None, help="the .tflite file (default: exports/NAME.tflite)")
    zt.set_defaults(func=_zoo_export_tflite)
    return parser


NEEDS_TENSORFLOW = {"export-tflite", "calibrate", "soup"}  # evaluate, predict and video check their input first


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if {args.command, getattr(args, "zoo_command", None)} & NEEDS_TENSORFLOW:
        from fer.logs import quiet_tensorflow

        quiet_tensorflow(args.verbose)
    # Logs to stderr so that --json keeps stdout to exactly one JSON document.
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    return run_command(lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
