"""Data loading: every format yields (N, C, H, W) float images in [0, 1], labels kept apart, fixed splits."""

import gzip

import numpy as np
import pytest
import torch

import bayesvae
from bayesvae.data import load_dataset
from bayesvae.data.idx import read_idx
from test_bad_input import idx_bytes


def test_digits_is_embedded_and_split_fixed(digits):
    assert digits.train_x.shape == (1437, 1, 8, 8) and digits.test_x.shape == (360, 1, 8, 8)
    assert 0 <= float(digits.train_x.min()) and float(digits.train_x.max()) == 1.0
    assert torch.unique(digits.train_x).numel() == 17  # 0/16 ... 16/16
    assert sorted(torch.unique(digits.test_y).tolist()) == list(range(10))
    again = load_dataset("digits")
    assert torch.equal(again.test_x, digits.test_x)


def test_idx_round_trip_plain_and_gzip(tmp_path):
    array = np.random.default_rng(0).integers(0, 256, (3, 4, 5), dtype=np.uint8)
    (tmp_path / "a").write_bytes(idx_bytes(array))
    (tmp_path / "a.gz").write_bytes(gzip.compress(idx_bytes(array)))
    for name in ("a", "a.gz"):
        assert np.array_equal(read_idx(tmp_path / name, 3).numpy(), array)


def test_mnist_folder_with_only_test_files_is_split(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (60, 28, 28), dtype=np.uint8)
    labels = (np.arange(60) % 10).astype(np.uint8)
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(images)))
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(labels))
    data = load_dataset("mnist", tmp_path, download=False)
    assert data.train_x.shape == (50, 1, 28, 28) and data.test_x.shape == (10, 1, 28, 28)
    assert "only the test files" in data.note
    # the split is a permutation of the file: every image appears once, with its own label
    both = torch.cat([data.train_x, data.test_x]).flatten(1)
    both_y = torch.cat([data.train_y, data.test_y])
    original = torch.from_numpy(images).float().flatten(1) / 255
    order = [int(torch.nonzero((original == row).all(1))[0]) for row in both]
    assert sorted(order) == list(range(60))
    assert torch.equal(both_y, torch.from_numpy(labels).long()[order])


def test_npz_uint8_and_explicit_test_split(tmp_path):
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "d.npz", images=rng.integers(0, 256, (30, 12, 12), dtype=np.uint8),
             labels=np.arange(30) % 3, test_images=rng.random((6, 12, 12)).astype(np.float32))
    data = load_dataset(str(tmp_path / "d.npz"))
    assert data.train_x.shape == (30, 1, 12, 12) and data.test_x.shape == (6, 1, 12, 12)
    assert data.test_y is None and data.train_y.tolist() == (np.arange(30) % 3).tolist()
    assert float(data.train_x.max()) <= 1.0


def test_npz_object_array_is_refused_not_unpickled(tmp_path):
    np.savez(tmp_path / "evil.npz", images=np.array([object()], dtype=object))
    with pytest.raises(bayesvae.BadInput, match="without pickle"):
        load_dataset(str(tmp_path / "evil.npz"))


def test_image_folder_with_class_subfolders(tmp_path):
    from PIL import Image

    for label in ("cat", "dog"):
        (tmp_path / label).mkdir()
        for i in range(6):
            Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(tmp_path / label / f"{i}.png")
    data = load_dataset(str(tmp_path))
    assert data.train_x.shape[1:] == (1, 8, 8) and data.train_x.shape[0] + data.test_x.shape[0] == 12
    assert set(torch.cat([data.train_y, data.test_y]).tolist()) == {0, 1}


@pytest.mark.mnist
def test_real_mnist_loader_and_one_epoch(mnist_dir, tmp_path):
    data = load_dataset("mnist", mnist_dir, download=False)
    assert data.train_x.shape[1:] == (1, 28, 28)
    assert data.train_x.shape[0] + data.test_x.shape[0] == 10000
    counts = torch.bincount(torch.cat([data.train_y, data.test_y]), minlength=10)
    assert counts.shape == (10,) and int(counts.min()) > 800  # every digit 0–9 is there (~1,000 each)
    assert float(data.train_x.min()) == 0.0 and float(data.train_x.max()) == 1.0
    run = bayesvae.fit(data="mnist", data_dir=str(mnist_dir), out=tmp_path / "mnist", epochs=1, latent_dim=8,
                       device="cpu", progress=False, log=lambda _: None)
    row = run.history_rows[0]
    assert -300 < row["test_elbo"] < -80, row  # a binarized-MNIST VAE after one epoch: ~ −150 nats
