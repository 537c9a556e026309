"""Bad input: exit code 2, one line on stderr naming the problem, no traceback, nothing written or changed.

Each case prepares files in a fresh folder (the working directory), snapshots every byte under it,
runs ``bayesvae`` and checks the snapshot is unchanged.
"""

import gzip
import io
import json
import shutil
import struct
import zipfile
import zlib

import numpy as np
import pytest

import bayesvae
from conftest import tree_snapshot

quiet = dict(device="cpu", progress=False, log=lambda _: None)


def idx_bytes(array: np.ndarray) -> bytes:
    return bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", s) for s in array.shape) + array.tobytes()


def mnist_folder(root, images=None, labels=None, raw_images: bytes | None = None):
    folder = root / "mnist"
    folder.mkdir()
    images = np.zeros((20, 28, 28), np.uint8) if images is None else images
    labels = np.arange(20, dtype=np.uint8) % 10 if labels is None else labels
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(raw_images or idx_bytes(images)))
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels)))
    return ["--dataset", "mnist", "--data-dir", folder, "--no-download"]


def npz(root, **arrays):
    path = root / "data.npz"
    np.savez(path, **arrays)
    return ["--dataset", path]


def trained(root, name="run", **options):
    bayesvae.fit(out=root / name, **{"epochs": 1, "latent_dim": 2, "hidden": (16,), **quiet, **options})
    return root / name


def edit_config(root, **model):
    run = trained(root)
    config = json.loads((run / "config.json").read_text())
    config["model"].update(model)
    (run / "config.json").write_text(json.dumps(config))
    return ["--resume", run]


def swapped_checkpoint(root):
    run = trained(root, "a", hidden=(16,))
    other = trained(root, "b", hidden=(24,))
    shutil.copy(other / "checkpoint.safetensors", run / "checkpoint.safetensors")
    return ["--resume", run]


def truncated_checkpoint(root):
    run = trained(root)
    path = run / "checkpoint.safetensors"
    path.write_bytes(path.read_bytes()[:500])
    return ["--resume", run]


def file_in_the_way(root):
    (root / "afile").write_text("x")
    return ["--out", root / "afile" / "run"]


def foreign_folder(root):
    (root / "photos").mkdir()
    (root / "photos" / "holiday.jpg").write_text("precious")
    return ["--out", root / "photos", "--force"]


def npz_claiming(root, shape=(10**7, 1000, 1000)):
    """A .npz whose 'images' header claims ``shape`` (10^13 float32 elements) over 100 bytes of data."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": shape})
    with zipfile.ZipFile(root / "claims.npz", "w") as archive:
        archive.writestr("images.npy", header.getvalue() + bytes(100))
    return ["--dataset", root / "claims.npz"]


def png_bomb(root, size=100_000):
    """A PNG whose header claims size × size pixels (10^10) in a few hundred bytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    (root / "pictures").mkdir()
    (root / "pictures" / "bomb.png").write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(bytes(size + 1))) + chunk(b"IEND", b""))
    return ["--dataset", root / "pictures"]


CASES = {
    # data
    "unknown dataset": (lambda r: ["--dataset", "nosuchset"], "unknown --dataset"),
    "missing data dir": (lambda r: ["--dataset", "mnist", "--data-dir", r / "nowhere", "--no-download"], "no mnist IDX files"),
    "idx wrong magic": (lambda r: mnist_folder(r, raw_images=b"\x12\x34" + bytes(100)), "not an IDX file"),
    "idx truncated": (lambda r: mnist_folder(r, raw_images=idx_bytes(np.zeros((20, 28, 28), np.uint8))[:5000]), "truncated"),
    "idx wrong dimensions": (lambda r: mnist_folder(r, raw_images=idx_bytes(np.zeros((20, 784), np.uint8))), "dimensions"),
    "labels count mismatch": (lambda r: mnist_folder(r, labels=np.zeros(7, np.uint8)), "7 labels for 20 images"),
    "npz without images": (lambda r: npz(r, pictures=np.zeros((10, 8, 8))), "no array named 'images'"),
    "npz wrong dtype": (lambda r: npz(r, images=np.zeros((10, 8, 8), np.complex64)), "dtype"),
    "npz with NaN": (lambda r: npz(r, images=np.full((10, 8, 8), np.nan, np.float32)), "NaN"),
    "npz outside [0, 1]": (lambda r: npz(r, images=np.full((10, 8, 8), 3.0, np.float32)), "expected [0, 1]"),
    "npz labels mismatch": (lambda r: npz(r, images=np.zeros((10, 8, 8), np.float32), labels=np.zeros(3, np.int64)), "3 labels for 10 images"),
    "npz wrong shape": (lambda r: npz(r, images=np.zeros((10, 5, 8, 8), np.float32)), "shape"),
    "npz not a zip": (lambda r: [(r / "bad.npz").write_bytes(b"junk") and "--dataset", r / "bad.npz"], "not a readable .npz"),
    "bernoulli on grey data": (lambda r: ["--binarize", "none", "--likelihood", "bernoulli"], "grey levels"),
    "npz header claiming 10^13 elements": (npz_claiming, "claims shape (10000000, 1000, 1000)"),
    "decompression-bomb PNG": (png_bomb, "decompression bomb"),
    # settings
    "latent dim 10^9": (lambda r: ["--latent-dim", "1000000000"], "needs about"),
    "particles 10^8": (lambda r: ["--particles", "100000000"], "needs about 94 TiB"),
    "latent dim 0": (lambda r: ["--latent-dim", "0"], "--latent-dim"),
    "negative beta": (lambda r: ["--beta", "-1"], "--beta"),
    "NaN beta": (lambda r: ["--beta", "nan"], "--beta"),
    "particles 0": (lambda r: ["--particles", "0"], "--particles"),
    "batch larger than data": (lambda r: ["--batch-size", "5000"], "larger than the 1437 training images"),
    "epochs 0": (lambda r: ["--epochs", "0"], "--epochs"),
    "lr 0": (lambda r: ["--lr", "0"], "--lr"),
    "negative lr": (lambda r: ["--lr", "-0.1"], "--lr"),
    "negative warm-up": (lambda r: ["--warmup-epochs", "-2"], "--warmup-epochs"),
    "unknown guide": (lambda r: ["--guide", "magic"], "unknown --guide"),
    "unknown likelihood": (lambda r: ["--likelihood", "poisson"], "unknown --likelihood"),
    "unknown net": (lambda r: ["--net", "transformer"], "unknown --net"),
    "unknown elbo": (lambda r: ["--elbo", "exact"], "unknown --elbo 'exact'; choose one of"),
    "hidden not numbers": (lambda r: ["--hidden", "a,b"], "comma-separated"),
    "zero likelihood scale": (lambda r: ["--likelihood", "gaussian", "--likelihood-scale", "0"], "--likelihood-scale"),
    # runs
    "resume missing run": (lambda r: ["--resume", r / "ghost"], "does not exist"),
    "resume non-run folder": (lambda r: [(r / "empty").mkdir() or "--resume", r / "empty"], "not a bayesvae run"),
    "truncated safetensors": (truncated_checkpoint, "corrupt"),
    "impossible config": (lambda r: edit_config(r, latent_dim=-3), "--latent-dim"),
    "unknown config key": (lambda r: edit_config(r, colour="red"), "unknown model settings"),
    "checkpoint of another architecture": (swapped_checkpoint, "another architecture"),
    "resume with changed options": (lambda r: ["--resume", trained(r), "--lr", "0.1"], "cannot change it"),
    "existing run without --force": (lambda r: ["--out", trained(r)], "--force"),
    "--force on a folder that is not a run": (foreign_folder, "refusing to empty it"),
    "output path under a file": (file_in_the_way, "cannot create run folder"),
    "output folder not writable": (lambda r: ["--out", "/proc/bayesvae-run"], "cannot create run folder /proc"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_exits_2_with_one_line_and_writes_nothing(case, cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_args, expected = CASES[case]
    args = [str(a) for a in make_args(tmp_path)]
    before = tree_snapshot(tmp_path)
    result = cli("train", "--epochs", "1", "--device", "cpu", *args) if "--epochs" not in args else \
        cli("train", "--device", "cpu", *args)
    assert result.code == 2, result
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bayesvae: error:"), result.err
    assert "Traceback" not in result.err
    assert expected in lines[0], lines[0]
    assert tree_snapshot(tmp_path) == before, "files were created or changed"


def _disk_full(monkeypatch):
    """Every file write fails as on a full disk (ENOSPC)."""
    import errno
    from pathlib import Path

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(self))

    monkeypatch.setattr(Path, "write_bytes", full)
    monkeypatch.setattr(Path, "write_text", full)
    monkeypatch.setattr("bayesvae.inference.files.write_in_halves", lambda path, data, name: full(path))


@pytest.mark.parametrize("when", ["new run", "resume"])
def test_disk_full_exits_2_and_leaves_nothing_half_written(when, cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["--out", tmp_path / "run", "--epochs", "1"] if when == "new run" else \
        ["--resume", trained(tmp_path), "--epochs", "3"]
    before = tree_snapshot(tmp_path)
    _disk_full(monkeypatch)
    result = cli("train", "--device", "cpu", *args)
    monkeypatch.undo()
    assert result.code == 2, result
    assert result.err.count("\n") == 1 and "disk full" in result.err and "Traceback" not in result.err
    assert tree_snapshot(tmp_path) == before


def test_failed_download_leaves_no_folder_behind(cli, tmp_path, monkeypatch):
    """torchvision creates DIR/MNIST/raw and starts writing before the network fails: all of it goes."""
    import urllib.error

    import torchvision.datasets

    class Offline:
        def __init__(self, root, train, download):
            raw = tmp_path / "data" / "MNIST" / "raw"
            raw.mkdir(parents=True, exist_ok=True)
            (raw / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b partial")
            raise urllib.error.URLError("network unreachable")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(torchvision.datasets, "MNIST", Offline)
    result = cli("train", "--dataset", "mnist", "--data-dir", tmp_path / "data", "--epochs", "1", "--device", "cpu")
    assert result.code == 2 and "could not download mnist" in result.err, result
    assert len(result.err.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir()), list(tmp_path.rglob("*"))
