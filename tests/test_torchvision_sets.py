"""--dataset cifar10 / celeba through torchvision, on tiny files in the official formats made here.

torchvision checks every file's md5 against its list of the official files before reading it; the tests
put the md5s of the files they made into that list (monkeypatch), so the check itself still runs, and an
unpatched list refuses the same files: unverified CIFAR batches (pickles) are never opened.
"""

from __future__ import annotations

import hashlib
import pickle

import numpy as np
import pytest
import torchvision.datasets as tvd
from PIL import Image

import bayesvae
from bayesvae.data import load_dataset
from conftest import tree_snapshot

TRAIN_FILES = [f"data_batch_{i}" for i in range(1, 6)]


def md5(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def make_cifar(root, per_file=6, seed=0):
    """CIFAR-10's python layout: five training batches, one test batch, batches.meta (pickled dicts)."""
    folder = root / tvd.CIFAR10.base_folder
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for name in TRAIN_FILES + ["test_batch"]:
        batch = {"data": rng.integers(0, 256, (per_file, 3072), dtype=np.uint8),
                 "labels": [int(v) for v in rng.integers(0, 10, per_file)]}
        (folder / name).write_bytes(pickle.dumps(batch))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"class{i}" for i in range(10)]}))
    return folder


@pytest.fixture
def cifar(tmp_path, monkeypatch):
    """Tiny CIFAR-10 files with torchvision's md5 list pointed at them."""
    folder = make_cifar(tmp_path / "data")
    monkeypatch.setattr(tvd.CIFAR10, "train_list", [[n, md5(folder / n)] for n in TRAIN_FILES])
    monkeypatch.setattr(tvd.CIFAR10, "test_list", [["test_batch", md5(folder / "test_batch")]])
    monkeypatch.setattr(tvd.CIFAR10, "meta", {**tvd.CIFAR10.meta, "md5": md5(folder / "batches.meta")})
    return tmp_path / "data"


def test_cifar10_streams_its_own_splits_with_labels(cifar):
    data = load_dataset("cifar10", cifar, download=False, workers=0)
    assert data.image_shape == (3, 32, 32) and data.train_x.n == 30 and data.test_x.n == 6
    assert data.train_y.shape == (30,) and int(data.train_y.max()) < 10
    first = data.train_x.head(1)[0]
    raw = pickle.loads((cifar / tvd.CIFAR10.base_folder / "data_batch_1").read_bytes())["data"][0]
    assert np.array_equal((first.numpy() * 255).round().astype(np.uint8).reshape(-1), raw)  # uint8 / 255, CHW
    resized = load_dataset("cifar10", cifar, download=False, image_size=16, workers=0)
    assert resized.image_shape == (3, 16, 16) and resized.test_x.head(2).shape == (2, 3, 16, 16)


def test_cifar10_trains_and_its_run_reopens_the_data(cifar, tmp_path):
    run = bayesvae.fit(data="cifar10", out=str(tmp_path / "run"), data_dir=str(cifar), download=False, device="cpu",
                       progress=False, log=lambda _: None, epochs=1, batch_size=10, latent_dim=2, hidden=(8,), workers=0)
    assert run.config.data.dataset == "cifar10" and run.config.data.data_dir == str(cifar.resolve())
    x, y = bayesvae.load_run(tmp_path / "run").images("test")
    assert x.shape == (6, 3, 32, 32) and y.shape == (6,)


def test_unverified_cifar_files_are_refused_without_being_read(tmp_path, cli, monkeypatch):
    """The same files with torchvision's real md5 list: exit 2, one line, no pickle.load, nothing written."""
    make_cifar(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(pickle, "load", lambda *a, **k: pytest.fail("an unverified CIFAR file was unpickled"))
    before = tree_snapshot(tmp_path)
    result = cli("train", "--dataset", "cifar10", "--data-dir", tmp_path / "data", "--no-download", "--epochs", "1",
                 "--device", "cpu")
    lines = result.err.strip().splitlines()
    assert result.code == 2 and len(lines) == 1 and "no verified cifar10 files" in lines[0], result.err
    assert tree_snapshot(tmp_path) == before


def make_celeba(root, n=12, seed=0):
    """CelebA's layout: img_align_celeba/*.jpg and the five annotation text files (split 0 train, 2 test)."""
    folder = root / tvd.CelebA.base_folder
    (folder / "img_align_celeba").mkdir(parents=True)
    rng = np.random.default_rng(seed)
    names = [f"{i + 1:06d}.jpg" for i in range(n)]
    for name in names:
        Image.fromarray(rng.integers(0, 256, (218, 178, 3), dtype=np.uint8)).save(folder / "img_align_celeba" / name)
    rows = lambda values: "".join(f"{name} {v}\n" for name, v in zip(names, values))  # noqa: E731
    (folder / "list_eval_partition.txt").write_text(rows([0] * (n - 4) + [2] * 4))
    (folder / "identity_CelebA.txt").write_text(rows(range(n)))
    (folder / "list_bbox_celeba.txt").write_text(f"{n}\nimage_id x_1 y_1 width height\n" + rows(["1 2 3 4"] * n))
    (folder / "list_landmarks_align_celeba.txt").write_text(f"{n}\nlefteye_x lefteye_y\n" + rows(["1 2"] * n))
    (folder / "list_attr_celeba.txt").write_text(f"{n}\nSmiling Young\n" + rows(["1 -1"] * n))
    return folder


def test_celeba_streams_its_train_and_test_partitions_resized(tmp_path, monkeypatch):
    folder = make_celeba(tmp_path / "data")
    monkeypatch.setattr(tvd.CelebA, "file_list", [(file_id, md5(folder / name) if name.endswith(".txt") else h, name)
                                                  for file_id, h, name in tvd.CelebA.file_list])
    data = load_dataset("celeba", tmp_path / "data", download=False, image_size=16, workers=0)
    assert data.image_shape == (3, 16, 16) and data.train_x.n == 8 and data.test_x.n == 4 and data.train_y is None
    assert data.test_x.evaluation("none").load().shape == (4, 3, 16, 16)
    native = load_dataset("celeba", tmp_path / "data", download=False, workers=0)
    assert native.image_shape == (3, 218, 178) and native.train_x.head(1).shape == (1, 3, 218, 178)
