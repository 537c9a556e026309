"""Streamed data (image folders with --stream, .npy memory maps; CIFAR-10/CelebA in test_torchvision_sets.py):
the same batches and numbers as in memory, per-rank shares, keyed binarization, and bad input refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import bayesvae
from bayesvae.api import resume
from bayesvae.data import load_dataset
from bayesvae.inference.batches import rank_share, shuffled_batches
from conftest import tree_snapshot

QUICK = dict(device="cpu", progress=False, log=lambda _: None, epochs=2, batch_size=16, latent_dim=2, hidden=(16,))
EXACT = dict(QUICK, binarize="none", likelihood="continuous-bernoulli")  # no binarization draw: exact equality


def grey_images(n=60, size=(12, 12), seed=0) -> np.ndarray:
    return (np.random.default_rng(seed).random((n, *size)) * 255).astype(np.uint8)


def save_folder(root, images, classes=None):
    """PNG files, sorted by name in the order of ``images`` (class subfolders when ``classes`` is given)."""
    for i, image in enumerate(images):
        folder = root if classes is None else root / f"class{classes[i]}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{i:03d}.png")
    return root


def test_streamed_folder_and_memmap_give_the_in_memory_metrics_exactly(tmp_path):
    """Same images, same seed, --binarize none: every epoch's train loss and test terms equal to the last bit
    (the same global batches, uint8 / 255 in both readers, the DataLoader leaves torch's RNG untouched)."""
    images = grey_images()
    np.savez(tmp_path / "same.npz", images=images)
    np.save(tmp_path / "same.npy", images)
    folder = save_folder(tmp_path / "folder", images)
    in_memory = bayesvae.fit(data=str(tmp_path / "same.npz"), **EXACT).history_rows
    streamed = bayesvae.fit(data=str(folder), stream=True, workers=2, **EXACT).history_rows
    memmap = bayesvae.fit(data=str(tmp_path / "same.npy"), workers=0, **EXACT).history_rows
    assert len(in_memory) == 2 and streamed == in_memory and memmap == in_memory


def test_training_and_reading_the_test_split_leave_no_reading_worker_running(tmp_path):
    """The workers stop when fit returns (also when it is interrupted), not whenever the garbage collector
    reaches the DataLoader: that wait (5 s per worker) landed on whatever ran next."""
    import multiprocessing

    np.save(tmp_path / "x.npy", grey_images(40))
    run = bayesvae.fit(data=str(tmp_path / "x.npy"), workers=2, out=tmp_path / "run", **QUICK)
    assert multiprocessing.active_children() == []
    x, _ = run.images("test")
    assert x.shape[0] > 0 and multiprocessing.active_children() == []


def test_rank_shares_and_resumed_steps_are_exact_pieces_of_the_global_batches(tmp_path):
    """World 2: the two ranks' images of each step, side by side, are the single-process batch (binarized
    dynamically, so the keyed draws are per image, not per rank); start_step skips steps unloaded."""
    stream = load_dataset(str(save_folder(tmp_path / "f", grey_images(40))), stream=True, workers=1).train_x
    source = stream.training("dynamic", seed=3)

    def epoch(start=0, rank=0, world=1):
        rng = torch.Generator().manual_seed(7)
        return list(source.epoch(rng, 8).batches(start, rank, world))

    whole = epoch()
    shares = [epoch(rank=r, world=2) for r in (0, 1)]
    assert len(whole) == 5 and all(torch.equal(torch.cat([a, b]), w) for a, b, w in zip(*shares, whole))
    assert [s.shape[0] for s in shares[0]] == [4, 4, 4, 4, 1] and [s.shape[0] for s in shares[1]] == [4, 4, 4, 4, 0]
    assert all(torch.equal(a, b) for a, b in zip(epoch(start=3), whole[3:])) and len(epoch(start=3)) == 2
    # without binarization no key is drawn: the global batches are shuffled_batches' own, split by rank_share
    grey_share = next(iter(stream.training("none", 3).epoch(torch.Generator().manual_seed(7), 8).batches(0, 1, 2)))
    order = shuffled_batches(stream.n, 8, torch.Generator().manual_seed(7))
    assert torch.equal(grey_share, torch.stack([stream.images[i] for i in rank_share(order[0], 1, 2).tolist()]))


def test_keyed_binarization_is_bernoulli_of_the_grey_level(tmp_path):
    """x ~ Bernoulli(p): 400 images of constant grey 77/255 give 0/1 pixels with mean 77/255 ± 4 s.e.;
    the next epoch draws other pixels (dynamic), the evaluation draw is one fixed image set."""
    images = np.full((480, 10, 10), 77, np.uint8)
    np.save(tmp_path / "grey.npy", images)
    data = load_dataset(str(tmp_path / "grey.npy"), workers=0)
    source = data.train_x.training("dynamic", seed=0)
    rng = torch.Generator().manual_seed(0)
    first, second = (torch.cat(list(source.epoch(rng, 100).batches())) for _ in range(2))
    p = 77 / 255
    assert set(torch.unique(first).tolist()) == {0.0, 1.0}
    assert abs(float(first.mean()) - p) < 4 * (p * (1 - p) / first.numel()) ** 0.5
    assert not torch.equal(first, second)
    evaluation = data.test_x.evaluation("dynamic")
    assert torch.equal(evaluation.load(), evaluation.load()) and evaluation.load().shape == (80, 1, 10, 10)


def test_streamed_run_resumes_to_the_same_numbers_and_reads_its_test_split_into_memory(tmp_path):
    """2 epochs straight = 1 epoch, then resumed to 2 (dynamic binarization: the epoch keys come from the
    saved data generator); diagnostics and the pictures load the test split's evaluation images into memory."""
    images = grey_images(120, (14, 10))
    folder = save_folder(tmp_path / "f", images, classes=np.arange(120) % 3)
    options = dict(QUICK, stream=True, batch_size=32, workers=0)  # workers: the equality test above
    straight = bayesvae.fit(data=str(folder), out=str(tmp_path / "a"), **options).history_rows
    bayesvae.fit(data=str(folder), out=str(tmp_path / "b"), **{**options, "epochs": 1})
    resumed = resume(tmp_path / "b", epochs=2, progress=False, log=lambda _: None)
    assert resumed.history_rows == straight
    run = bayesvae.load_run(tmp_path / "b")
    x, y = run.images("test")
    assert x.shape == (20, 1, 14, 10) and sorted(set(y.tolist())) == [0, 1, 2]
    assert run.config.data.stream is True and run.config.image_shape == (1, 14, 10)
    assert (tmp_path / "b" / "reconstructions.png").is_file()


@pytest.mark.slow
def test_diagnose_runs_on_a_streamed_run(tmp_path, cli):
    folder = save_folder(tmp_path / "f", grey_images(120, (14, 10)))
    bayesvae.fit(data=str(folder), out=str(tmp_path / "run"), **dict(QUICK, stream=True, epochs=1))
    result = cli("diagnose", tmp_path / "run", "--device", "cpu", "--n-images", "8")
    assert result.code == 0, result.err
    assert (tmp_path / "run" / "diagnostics").is_dir()


def test_mid_epoch_interrupt_of_a_streamed_run_resumes_to_the_same_parameters(tmp_path, monkeypatch):
    """Ctrl-C at epoch 2, step 2 of a streamed run (dynamic binarization, 2 workers): the resumed run skips the
    two steps done without loading them and ends with the uninterrupted run's parameters and metrics."""
    import os
    import signal

    import bayesvae.inference.train as train_module
    from bayesvae.inference.step import TrainingStep

    folder = save_folder(tmp_path / "f", grey_images(100))
    options = dict(QUICK, stream=True, workers=2, batch_size=20, epochs=3)  # 5 steps per epoch
    straight = bayesvae.fit(data=str(folder), out=str(tmp_path / "straight"), **options)
    original, calls = TrainingStep.__call__, {"n": 0}

    def step_then_interrupt(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 7:
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(TrainingStep, "__call__", step_then_interrupt)
    with pytest.raises(train_module.Interrupted) as stop:
        bayesvae.fit(data=str(folder), out=str(tmp_path / "cut"), **options)
    assert (stop.value.state.epoch, stop.value.state.step) == (1, 2)
    monkeypatch.setattr(TrainingStep, "__call__", original)
    resumed = resume(tmp_path / "cut", progress=False, log=lambda _: None)
    a, b = straight.pair.unconstrained_parameters(), resumed.pair.unconstrained_parameters()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.history_rows == straight.history_rows


def test_rgb_folder_of_several_sizes_is_resized_and_keeps_its_colour(tmp_path):
    rng = np.random.default_rng(1)
    for i in range(12):
        Image.fromarray((rng.random((20 + i, 16 + 2 * i, 3)) * 255).astype(np.uint8)).save(tmp_path / f"{i}.png")
    data = load_dataset(str(tmp_path), stream=True, image_size=8, workers=0)
    assert data.image_shape == (3, 8, 8) and data.train_x.n == 10 and data.test_x.n == 2 and data.train_y is None
    assert data.train_x.head(10).shape == (10, 3, 8, 8)


def _png_bytes(image: np.ndarray) -> bytes:
    import io

    out = io.BytesIO()
    Image.fromarray(image).save(out, format="PNG")
    return out.getvalue()


def mixed_sizes(root):
    save_folder(root / "f", grey_images(5, (8, 8)))
    Image.fromarray(grey_images(1, (9, 8))[0]).save(root / "f" / "z.png")
    return ["--dataset", root / "f", "--stream"]


def corrupt_image(root, data: bytes):
    save_folder(root / "f", grey_images(6, (8, 8)))
    (root / "f" / "003.png").write_bytes(data)
    return ["--dataset", root / "f", "--stream"]


def memmap(root, array):
    np.save(root / "x.npy", array)
    return ["--dataset", root / "x.npy"]


CASES = {
    "folder of mixed sizes without --image-size": (mixed_sizes, "images of several sizes (8×8, 8×9, ...): pass --image-size"),
    "not an image": (lambda r: corrupt_image(r, b"not a png at all"), "003.png: cannot decode image"),
    "truncated PNG": (lambda r: corrupt_image(r, _png_bytes(grey_images(1, (8, 8))[0])[:60]), "003.png: cannot decode image"),
    "memmap of int32": (lambda r: memmap(r, np.zeros((10, 8, 8), np.int32)), "dtype int32 is not one of"),
    "memmap channels last": (lambda r: memmap(r, np.zeros((10, 8, 8, 3), np.uint8)), "expected (N, H, W) or (N, C, H, W)"),
    "memmap of one dimension": (lambda r: memmap(r, np.zeros(100, np.uint8)), "shape (100,)"),
    "memmap of objects": (lambda r: [np.save(r / "x.npy", np.array([None] * 4, object)), "--dataset", r / "x.npy"][1:],
                          "not a readable .npy array"),
    "--image-size on data in memory": (lambda r: ["--image-size", "8"], "--image-size resizes streamed data only"),
    "--workers on data in memory": (lambda r: ["--workers", "2"], "--workers reads streamed data only"),
    "--stream on digits": (lambda r: ["--stream"], "--dataset digits is loaded into memory"),
    "mixture model on streamed data": (lambda r: memmap(r, np.zeros((200, 8, 8), np.uint8)) + ["--model", "mixture"],
                                       "trains on data in memory only"),
    "negative --workers": (lambda r: memmap(r, np.zeros((10, 8, 8), np.uint8)) + ["--workers", "-1"], "--workers"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_streamed_input_exits_2_with_one_line_and_writes_nothing(case, cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_args, expected = CASES[case]
    args = [str(a) for a in make_args(tmp_path)]
    before = tree_snapshot(tmp_path)
    result = cli("train", "--epochs", "1", "--device", "cpu", *args)
    assert result.code == 2, result
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bayesvae: error:") and "Traceback" not in result.err, result.err
    assert expected in lines[0], lines[0]
    assert tree_snapshot(tmp_path) == before, "files were created or changed"


def test_a_pixel_outside_0_1_met_by_a_worker_stops_training_with_one_line(tmp_path, cli):
    """Float memory maps are checked image by image as workers read them: the worker's message, one line."""
    array = np.random.default_rng(0).random((30, 6, 6)).astype(np.float32)
    array[-1, 0, 0] = 1.5   # met in the first epoch (every image is read each epoch)
    np.save(tmp_path / "x.npy", array)
    result = cli("train", "--dataset", tmp_path / "x.npy", "--epochs", "1", "--device", "cpu",
                 "--out", tmp_path / "run", "--batch-size", "8")  # binarized: no support check reads it first
    lines = result.err.strip().splitlines()
    assert result.code == 2 and len(lines) == 1 and "pixel values outside [0, 1]" in lines[0], result.err
    assert "Traceback" not in result.err and "worker" not in lines[0]


@pytest.mark.slow
def test_ctrl_c_to_the_whole_process_group_leaves_the_workers_reading(tmp_path):
    """Ctrl-C in a terminal reaches the DataLoader workers too: they ignore it, so the test ELBO the
    paused epoch still computes reads its batches, and the run saves and exits 130 (resumable)."""
    import os
    import signal
    import subprocess
    import time

    from conftest import bayesvae_command, default_signals

    folder = save_folder(tmp_path / "f", grey_images(60))
    marker = tmp_path / "paused"
    cmd = bayesvae_command() + ["train", "--dataset", str(folder), "--stream", "--epochs", "3", "--batch-size", "16",
                                "--latent-dim", "2", "--hidden", "16", "--device", "cpu", "--out", str(tmp_path / "run")]
    env = {**os.environ, "BAYESVAE_PAUSE_AT": "evaluate:2", "BAYESVAE_PAUSE_FILE": str(marker)}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True,   # its own process group, as a terminal's foreground job
                            preexec_fn=default_signals)
    hung = time.monotonic() + 600
    while proc.poll() is None and not marker.exists() and time.monotonic() < hung:
        time.sleep(0.01)  # waiting for an event, not guessing a duration
    os.killpg(proc.pid, signal.SIGINT)
    err = proc.communicate(timeout=600)[1]
    assert proc.returncode == 130, err
    assert "interrupted after epoch 2" in err and "Traceback" not in err, err
