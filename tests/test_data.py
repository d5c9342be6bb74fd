import logging
import time

import numpy as np
import pytest

from conftest import FER2013, needs_fer2013, synthetic_faces, write_csv, write_tree
from fer.data import load_dataset, load_eval_split, load_training_faces, seen_in
from fer.errors import DatasetError
from fer.labels import EMOTIONS


def test_csv_uses_official_splits(tmp_path):
    x, y = synthetic_faces(3)
    usages = ["Training", "PublicTest", "PrivateTest"]
    rows = [(int(label), img, usages[i % 3]) for i, (img, label) in enumerate(zip(x, y))]
    path = write_csv(tmp_path / "fer2013.csv", rows)
    ds = load_dataset(path)
    assert ds.kind == "csv"
    assert (len(ds.train), len(ds.val), len(ds.test)) == (7, 7, 7)
    first_train = rows[0]
    np.testing.assert_array_equal(ds.train.images[0], first_train[1])
    assert ds.train.labels[0] == first_train[0]
    # evaluate scores the PrivateTest rows; the folder holding fer2013.csv works too
    assert len(load_eval_split(tmp_path)) == 7


@pytest.mark.parametrize("content, message", [
    ("label,pixels,Usage\n", ":1: expected the header"),
    ("emotion,pixels,Usage\n0,\"1 2 3\",Training\n", ":2: expected 2304 pixels, found 3"),
    ("emotion,pixels,Usage\n9,\"" + " ".join(["0"] * 2304) + "\",Training\n", ":2: emotion 9 is out of range"),
    ("emotion,pixels,Usage\n0,\"" + " ".join(["0"] * 2304) + "\",Training\nx,\"1\",Training\n", ":3: emotion 'x'"),
    ("emotion,pixels,Usage\n0,\"" + " ".join(["0"] * 2304) + "\",Nope\n", ":2: Usage 'Nope'"),
])
def test_bad_csv_fails_naming_the_line(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DatasetError, match=message):
        load_dataset(path)


def test_csv_with_empty_split_says_which(tmp_path):
    x, y = synthetic_faces(2)
    path = write_csv(tmp_path / "fer2013.csv", [(int(label), img, "Training") for img, label in zip(x, y)])
    with pytest.raises(DatasetError, match="val split .* is empty"):
        load_dataset(path)


def test_tree_with_alias_names_skips_contempt_and_corrupt_files(tmp_path, caplog):
    x, y = synthetic_faces(10)
    names = {0: "anger", 4: "sadness", 3: "happiness", 2: "fearful", 1: "disgusted", 5: "surprised"}
    write_tree(tmp_path, x, y, names)
    (tmp_path / "contempt").mkdir()
    write_tree(tmp_path / "contempt", x[:3], np.zeros(3, int), {0: "."})
    (tmp_path / "anger" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (tmp_path / "anger" / "notes.txt").write_text("hello")
    with caplog.at_level(logging.WARNING):
        split = load_eval_split(tmp_path)
    assert len(split) == 70
    assert list(split.class_counts()) == [10] * 7
    assert "contempt" in caplog.text and "no FER-2013 counterpart" in caplog.text
    assert "broken.jpg" in caplog.text and "notes.txt" in caplog.text
    ds = load_dataset(tmp_path, val_fraction=0.2)
    assert len(ds.skipped) == 2
    assert len(ds.train) + len(ds.val) + len(ds.test) == 70


def test_kaggle_layout_validation_slice_is_stratified_and_seeded(synthetic_folders):
    a = load_dataset(synthetic_folders, val_fraction=0.25, seed=3)
    b = load_dataset(synthetic_folders, val_fraction=0.25, seed=3)
    c = load_dataset(synthetic_folders, val_fraction=0.25, seed=4)
    assert list(a.val.class_counts()) == [10] * 7
    assert list(a.train.class_counts()) == [30] * 7
    np.testing.assert_array_equal(a.val.images, b.val.images)
    assert not np.array_equal(a.val.images, c.val.images)
    assert len(a.test) == 70


def test_test_faces_that_are_also_training_faces_are_found_pixel_for_pixel(tmp_path):
    x, y = synthetic_faces(3)
    nudged = x[1].copy()
    nudged[0, 0] ^= 1  # one pixel's lowest bit: another face
    test_faces = np.stack([x[0], nudged, x[20], synthetic_faces(1, seed=9)[0][0]])
    write_tree(tmp_path / "folders" / "train", x, y)
    write_tree(tmp_path / "folders" / "test", test_faces, np.array([0, 0, 6, 0]))
    test = load_eval_split(tmp_path / "folders")  # in class-folder order: angry 0, 1, 3, then neutral 2
    training = load_training_faces(tmp_path / "folders")
    assert len(training) == 21, "the whole training split, validation slice included"
    assert seen_in(training, test.images).tolist() == [True, False, False, True]
    csv = write_csv(tmp_path / "fer2013.csv", [(int(label), img, usage) for img, label in zip(x, y)
                                               for usage in ("Training", "PublicTest", "PrivateTest")][:-3])
    np.testing.assert_array_equal(load_training_faces(csv), x[:-1])
    write_tree(tmp_path / "tree", x, y)
    assert load_training_faces(tmp_path / "tree") is None, "a single tree has no training split of its own"


def test_images_of_other_sizes_are_resized(tmp_path):
    import cv2

    (tmp_path / "happy").mkdir()
    cv2.imwrite(str(tmp_path / "happy" / "big.png"), np.full((100, 80, 3), 200, np.uint8))
    split = load_eval_split(tmp_path)
    assert split.images.shape == (1, 48, 48)
    assert split.labels.tolist() == [EMOTIONS.index("happy")]


def test_empty_tree_fails_clearly(tmp_path):
    (tmp_path / "happy").mkdir()
    with pytest.raises(DatasetError, match="empty"):
        load_eval_split(tmp_path)


def test_missing_path_fails_clearly(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(tmp_path / "nowhere")


@needs_fer2013
def test_full_fer2013_loads_in_seconds():
    start = time.time()
    ds = load_dataset(FER2013)
    assert time.time() - start < 30
    assert len(ds.train) + len(ds.val) == 28709
    assert len(ds.test) == 3589
    assert ds.train.class_counts()[EMOTIONS.index("disgust")] + ds.val.class_counts()[1] == 436
