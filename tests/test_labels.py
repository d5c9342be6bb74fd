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
