"""scripts/soup_history.py: soups of each entry and the entry before it in git, scored on validation."""

import importlib.util
import json
import shutil
import subprocess

import numpy as np

from conftest import REPO

spec = importlib.util.spec_from_file_location("soup_history", REPO / "scripts" / "soup_history.py")
soup_history = importlib.util.module_from_spec(spec)
spec.loader.exec_module(soup_history)


def _git(repo, *args):
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True,
                          capture_output=True, text=True).stdout.strip()


def test_each_entry_is_souped_with_its_previous_version_in_git(app_zoo, synthetic_folders, tmp_path, monkeypatch,
                                                               capsys):
    import fer.soup
    from fer.zoo import load_network

    repo = tmp_path / "repo"
    entry = repo / "zoo" / "alpha"
    shutil.copytree(app_zoo / "beta", entry)  # the earlier version: beta's weights and record, as alpha
    _git(repo.parent, "init", "-q", str(repo))
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "earlier")
    earlier = _git(repo, "rev-parse", "HEAD")
    for file in ("model.keras", "metrics.json"):
        shutil.copy(app_zoo / "alpha" / file, entry / file)
    _git(repo, "commit", "-qam", "shipped")
    (repo / "unrelated.txt").write_text("a later commit that leaves the entry alone")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "later")

    mixed = []
    real = fer.soup.make_soup
    monkeypatch.setattr(fer.soup, "make_soup", lambda a, b, images: mixed.append((a, b)) or real(a, b, images))
    soup_history.main(["--data", str(synthetic_folders), "--zoo-dir", str(repo / "zoo"), "--models", "alpha",
                       "--repo", str(repo), "--json", str(tmp_path / "out.json")])
    ((shipped, before),) = mixed
    for network, source in ((shipped, app_zoo / "alpha"), (before, app_zoo / "beta")):
        for got, want in zip(network.get_weights(), load_network(str(source)).get_weights()):
            np.testing.assert_array_equal(got, want)
    row = json.loads((tmp_path / "out.json").read_text())["alpha"]
    assert row["earlier_commit"] == earlier[:7]
    for label, source in (("shipped", "alpha"), ("earlier", "beta")):
        assert row[label] == json.loads((app_zoo / source / "metrics.json").read_text())["tta_validation_accuracy"]
    assert set(row["soup"]) == {"none", "flip", "flip_shift"} and all(0 <= a <= 1 for a in row["soup"].values())
    table = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| alpha |")]
    assert len(table) == 3
    assert table[2] == f"| alpha | {earlier[:7]} | flip_shift | nan | nan | {row['soup']['flip_shift']:.4f} |", (
        "the test zoo's entries record no scores per view")
