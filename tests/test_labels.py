from fer.labels import EMOTIONS, NUM_CLASSES, canonical_emotion


def test_seven_emotions_in_fer2013_order():
    assert EMOTIONS == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    assert NUM_CLASSES == 7


def test_aliases_map_onto_emotions():
    for alias, expected in [("anger", "angry"), ("Sadness", "sad"), ("happiness", "happy"),
                            ("fearful", "fear"), ("disgusted", "disgust"), ("surprised", "surprise"),
                            ("neutral", "neutral")]:
        assert canonical_emotion(alias) == expected
    assert canonical_emotion("contempt") is None
    assert canonical_emotion("banana") is None


def test_importing_the_package_does_nothing():
    """No logging set-up, no TensorFlow, no model loading at import time."""
    import subprocess
    import sys

    code = ("import logging, sys, fer, fer.labels, fer.data, fer.augment, fer.evaluation, fer.faces; "
            "assert not logging.getLogger().handlers, 'logging configured at import'; "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
