"""What storing zoo weights in half precision costs: each model's validation scores with its weights as
trained (float32) and as the zoo stores them (rounded to float16, computed in float32).

    python benchmarks/half_storage.py [--data ../shared/fer2013] [--models custom_cnn vgg16_bn]

One view (no test-time augmentation) on the seeded 10% validation slice of train; the test split plays no
part. A model already stored in half precision shows no change. Results go to the "half_storage" block
of --out; a markdown table to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/fer2013")
    parser.add_argument("--models", nargs="+", default=None, help="zoo models (default: every entry)")
    parser.add_argument("--out", default="benchmarks/results.json")
    args = parser.parse_args()

    from fer.logs import quiet_tensorflow

    quiet_tensorflow()
    from fer.data import load_dataset
    from fer.evaluation import predict_scores
    from fer.export import round_to_stored_precision
    from fer.zoo import available_models, load_network

    val = load_dataset(args.data).val
    rows = {}
    print("| model | validation accuracy, float32 | stored in float16 | same top emotion | largest score change |")
    print("|---|---|---|---|---|")
    for name in args.models or available_models():
        network = load_network(name)
        full = predict_scores(network, val.images)
        round_to_stored_precision(network)
        half = predict_scores(network, val.images)
        rows[name] = {"accuracy_float32": float((full.argmax(1) == val.labels).mean()),
                      "accuracy_float16": float((half.argmax(1) == val.labels).mean()),
                      "same_top": float((full.argmax(1) == half.argmax(1)).mean()),
                      "max_score_change": float(np.abs(full - half).max()), "faces": len(val.labels)}
        r = rows[name]
        print(f"| `{name}` | {r['accuracy_float32']:.4f} | {r['accuracy_float16']:.4f} | {r['same_top']:.2%} | "
              f"{r['max_score_change']:.4f} |")
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {}
    results["half_storage"] = {"split": val.source_name, "views": 1, "models": rows}
    out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
