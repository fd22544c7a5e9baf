"""load_data.py on the real Omniglot release: fetching, verification, preprocessing, split, tasks."""

import functools
import http.server
import io
import shutil
import threading
import zipfile

import numpy as np
import pytest
from PIL import Image

import load_data
from load_data import OmniglotDataError, TaskSampler


# ------------------------------------------------------------------ data set


def test_dataset_has_every_character_and_drawing(omniglot):
    assert omniglot.images.shape == (1623, 20, 28, 28)
    assert omniglot.images.dtype == np.float32
    assert len(set(omniglot.names)) == 1623
    assert sum(n.startswith("images_background/") for n in omniglot.names) == 964
    assert sum(n.startswith("images_evaluation/") for n in omniglot.names) == 659
    assert len({n.split("/")[1] for n in omniglot.names}) == 50  # alphabets


def test_preprocessing_is_antialiased_28x28_with_ink_one(omniglot, mirror):
    first = omniglot.names[0]
    with zipfile.ZipFile(mirror / "images_background.zip") as archive:
        member = sorted(n for n in archive.namelist() if n.startswith(first + "/") and n.endswith(".png"))[0]
        source = np.asarray(Image.open(io.BytesIO(archive.read(member))).convert("L"), np.float32) / 255
    image = omniglot.images[0, 0]
    assert source.shape == (105, 105)
    assert image.min() == 0.0 and image.max() > 0.9          # background 0, ink up to 1
    # ink fraction survives the resize: same mean ink as the 105x105 source, up to resampling error
    assert abs(image.mean() - (1 - source).mean()) < 0.02
    # antialiased: grey levels between 0 and 1 exist (a nearest-neighbour resize has none)
    assert np.any((image > 0.05) & (image < 0.95))


def test_cache_is_used_without_touching_the_zips(omniglot, monkeypatch, tmp_path):
    monkeypatch.setenv(load_data.MIRROR_ENV, str(tmp_path / "no-such-mirror"))
    again = load_data.load_omniglot(progress=False)
    np.testing.assert_array_equal(again.images, omniglot.images)


# --------------------------------------------------------------- fetching


def _copy_mirror(mirror, destination):
    destination.mkdir()
    for name in load_data.RELEASE:
        shutil.copy(mirror / name, destination / name)
    return destination


def test_missing_data_without_mirror_says_how_to_fix(monkeypatch, tmp_path):
    monkeypatch.delenv(load_data.MIRROR_ENV, raising=False)
    monkeypatch.setenv(load_data.DATA_DIR_ENV, str(tmp_path / "data"))
    monkeypatch.setattr(load_data, "OFFICIAL_URL", "http://127.0.0.1:9/omniglot/")  # nothing listens
    with pytest.raises(OmniglotDataError, match="OMNIGLOT_MIRROR"):
        load_data.load_omniglot(progress=False)
    assert not any((tmp_path / "data").glob("*.zip")), "a failed download must leave no file"


def test_mirror_folder_without_the_zips_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv(load_data.MIRROR_ENV, str(tmp_path))
    with pytest.raises(OmniglotDataError, match="without images_background.zip"):
        load_data.fetch_release(progress=False)


def test_download_from_url_mirror_is_verified_and_atomic(mirror, monkeypatch, tmp_path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(mirror))
    handler.log_message = lambda *args: None
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        monkeypatch.setenv(load_data.MIRROR_ENV, f"http://127.0.0.1:{server.server_address[1]}/")
        monkeypatch.setenv(load_data.DATA_DIR_ENV, str(tmp_path))
        paths = load_data.fetch_release(progress=False)
        server.shutdown()
    for name, path in paths.items():
        assert path == tmp_path / name
        assert path.read_bytes() == (mirror / name).read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(load_data.RELEASE)  # no temp files left


def test_truncated_zip_is_refused(mirror, monkeypatch, tmp_path):
    folder = _copy_mirror(mirror, tmp_path / "mirror")
    damaged = folder / "images_evaluation.zip"
    damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])
    monkeypatch.setenv(load_data.MIRROR_ENV, str(folder))
    with pytest.raises(OmniglotDataError, match="images_evaluation.zip is not a zip file"):
        load_data.fetch_release(progress=False)


def test_corrupted_member_fails_crc(mirror, tmp_path):
    path = tmp_path / "images_background.zip"
    data = bytearray((mirror / "images_background.zip").read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        info = archive.infolist()[100]
    offset = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + info.compress_size // 2
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(OmniglotDataError, match="corrupt"):
        load_data.verify_zip(path)


def test_partial_release_is_refused(mirror, tmp_path):
    path = tmp_path / "images_evaluation.zip"
    with zipfile.ZipFile(mirror / "images_evaluation.zip") as source, zipfile.ZipFile(path, "w") as target:
        for info in source.infolist():
            if "/Angelic/character01/" not in info.filename:
                target.writestr(info, source.read(info))
    with pytest.raises(OmniglotDataError, match="658 characters, expected 20 and 659"):
        load_data.verify_zip(path)


def test_checksum_file_of_a_mirror_is_checked(mirror, monkeypatch, tmp_path):
    folder = _copy_mirror(mirror, tmp_path / "mirror")
    (folder / "SHA256SUMS").write_text("0" * 64 + "  images_background.zip\n")
    monkeypatch.setenv(load_data.MIRROR_ENV, str(folder))
    with pytest.raises(OmniglotDataError, match="SHA-256"):
        load_data.fetch_release(progress=False)


def test_real_mirror_passes_verification(mirror):
    characters = load_data.verify_zip(mirror / "images_background.zip")
    assert len(characters) == 964
    assert all(len(files) == 20 for files in characters.values())


# ------------------------------------------------------------------ split


def test_split_sizes_disjoint_complete_and_fixed():
    splits = load_data.split_characters()
    assert {k: len(v) for k, v in splits.items()} == {"train": 1100, "val": 100, "test": 423}
    everything = np.concatenate(list(splits.values()))
    assert sorted(everything) == list(range(1623))
    again = load_data.split_characters()
    for name in splits:
        np.testing.assert_array_equal(splits[name], again[name])
    other = load_data.split_characters(seed=1)
    assert not np.array_equal(splits["val"], other["val"])


# ------------------------------------------------------------------ tasks


def test_task_shapes_dtypes_and_balanced_labels(omniglot):
    task = TaskSampler(omniglot, "train", num_way=5, num_support=5, num_query=15).task(0)
    assert task.images_support.shape == (25, 28, 28, 1) and task.images_support.dtype == np.float32
    assert task.images_query.shape == (75, 28, 28, 1) and task.images_query.dtype == np.float32
    assert task.labels_support.dtype == np.int32 and task.labels_query.dtype == np.int32
    assert np.bincount(task.labels_support).tolist() == [5] * 5
    assert np.bincount(task.labels_query).tolist() == [15] * 5


def test_task_images_match_their_draw_and_support_query_are_disjoint(omniglot):
    sampler = TaskSampler(omniglot, "val", num_way=5, num_support=3, num_query=4, seed=7)
    for index in range(20):
        classes, drawings, _ = sampler.draw(index)
        assert len(set(classes)) == 5                                   # without replacement
        for row in drawings:
            assert len(set(row)) == 7                                   # support and query disjoint
        task = sampler.task(index)
        characters = sampler.characters[classes]
        for label in range(5):
            expected_support = omniglot.images[characters[label], drawings[label, :3]]
            got = task.images_support[task.labels_support == label, ..., 0]
            # same drawings, in the task's shuffled order
            assert sorted(map(bytes, got)) == sorted(map(bytes, expected_support))
            expected_query = omniglot.images[characters[label], drawings[label, 3:]]
            got = task.images_query[task.labels_query == label, ..., 0]
            assert sorted(map(bytes, got)) == sorted(map(bytes, expected_query))


def test_tasks_come_from_their_split_only(omniglot):
    splits = load_data.split_characters()
    for split in ("train", "val", "test"):
        sampler = TaskSampler(omniglot, split, 20, 1, 1, seed=3)
        used = np.concatenate([sampler.characters[sampler.draw(i)[0]] for i in range(30)])
        assert set(used) <= set(splits[split])


def test_labels_and_order_are_shuffled_per_task(omniglot):
    sampler = TaskSampler(omniglot, "train", 5, 5, 15)
    mappings = {tuple(sampler.draw(i)[0].argsort()) for i in range(30)}
    assert len(mappings) > 1, "the label of a class must vary between tasks"
    task = sampler.task(0)
    assert not np.all(np.diff(task.labels_support) >= 0), "examples must not come sorted by label"


def test_tasks_are_reproducible_from_the_seed(omniglot):
    a = TaskSampler(omniglot, "train", 5, 1, 5, seed=11)
    b = TaskSampler(omniglot, "train", 5, 1, 5, seed=11)
    c = TaskSampler(omniglot, "train", 5, 1, 5, seed=12)
    for x, y in zip(a.batch(3, 4), b.batch(3, 4)):
        for part_x, part_y in zip(x, y):
            np.testing.assert_array_equal(part_x, part_y)
    assert not np.array_equal(a.task(0).images_support, c.task(0).images_support)
    assert not np.array_equal(a.task(0).images_support, a.task(1).images_support)


def test_batch_index_selects_consecutive_tasks(omniglot):
    sampler = TaskSampler(omniglot, "train", 5, 1, 1)
    batch = sampler.batch(2, 3)
    for offset, task in enumerate(batch):
        np.testing.assert_array_equal(task.images_query, sampler.task(6 + offset).images_query)


def test_rotation_augmentation_adds_rotated_classes(omniglot):
    plain = TaskSampler(omniglot, "train", 5, 1, 1)
    rotated = TaskSampler(omniglot, "train", 5, 1, 1, augment_rotations=True)
    assert rotated.num_classes == 4 * plain.num_classes == 4400
    for index in range(10):
        classes, drawings, _ = rotated.draw(index)
        task = rotated.task(index)
        for label in range(5):
            character = rotated.characters[classes[label] // 4]
            turned = np.rot90(omniglot.images[character, drawings[label, 0]], k=classes[label] % 4)
            np.testing.assert_array_equal(task.images_support[task.labels_support == label][0, ..., 0], turned)
    with pytest.raises(ValueError, match="train split only"):
        TaskSampler(omniglot, "val", 5, 1, 1, augment_rotations=True)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(split="val", num_way=101, num_support=1, num_query=1), "exceeds the 100 classes of the 'val' split"),
        (dict(split="train", num_way=5, num_support=10, num_query=11), "exceeds the 20 drawings"),
        (dict(split="train", num_way=0, num_support=1, num_query=1), "num_way must be a positive integer"),
        (dict(split="train", num_way=5, num_support=-1, num_query=1), "num_support must be a positive integer"),
        (dict(split="train", num_way=5, num_support=1, num_query=0), "num_query must be a positive integer"),
        (dict(split="training", num_way=5, num_support=1, num_query=1), "split must be one of"),
    ],
)
def test_bad_task_arguments_name_the_limit(omniglot, kwargs, message):
    with pytest.raises(ValueError, match=message):
        TaskSampler(omniglot, **kwargs)


def test_atomic_output_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "weights.npz"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with load_data.atomic_output(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash while writing")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["weights.npz"]
