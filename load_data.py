"""Omniglot for few-shot learning: fetch, verify, preprocess, split and sample tasks.

You do not need to change anything in this file. Read it to see what a *task* is:

    A task is a tiny classification problem. We draw ``num_way`` (N) characters,
    give them the labels 0..N-1 in random order, and take ``num_support`` (K)
    drawings of each as the *support* set (the training data of the task) and
    ``num_query`` (Q) other drawings of each as the *query* set (its test data).

Data flow:

1. ``fetch_release()`` gets the two zips of the official release
   (``images_background.zip``, ``images_evaluation.zip``) from
   github.com/brendenlake/omniglot, or from a mirror named by the environment
   variable ``OMNIGLOT_MIRROR`` (a local folder or a URL base holding both zips).
   Downloads show a progress bar and are written atomically.
2. ``load_omniglot()`` verifies the zips (CRC, exactly 1623 characters x 20
   drawings), resizes every drawing to 28x28 with antialiasing (as in the MAML
   paper), makes ink 1.0 and background 0.0, and caches the result as one
   ``.npz`` file so later starts take well under a second.
3. ``split_characters()`` splits the 1623 characters with a fixed seed into
   1100 train / 100 validation / 423 test characters (the split of MAML and CS330).
4. ``TaskSampler`` samples reproducible N-way K-shot tasks from one split.

Run ``python load_data.py`` once to download and preprocess the data.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path
from typing import Iterator, NamedTuple

import numpy as np

OFFICIAL_URL = "https://raw.githubusercontent.com/brendenlake/omniglot/master/python/"
MIRROR_ENV = "OMNIGLOT_MIRROR"
DATA_DIR_ENV = "OMNIGLOT_DATA_DIR"
DEFAULT_DATA_DIR = Path(__file__).resolve().parent / "data" / "omniglot"

# name of each release zip -> (number of alphabets, number of characters)
RELEASE = {
    "images_background.zip": (30, 964),
    "images_evaluation.zip": (20, 659),
}
NUM_CHARACTERS = 1623
NUM_DRAWINGS = 20
SOURCE_SIZE = 105
IMAGE_SIZE = 28
SPLIT_SIZES = {"train": 1100, "val": 100, "test": 423}
SPLIT_SEED = 0
CACHE_VERSION = 1
CACHE_NAME = f"omniglot_{IMAGE_SIZE}x{IMAGE_SIZE}_v{CACHE_VERSION}.npz"


class OmniglotDataError(RuntimeError):
    """The Omniglot files are missing, unreachable, corrupt or incomplete."""


# --------------------------------------------------------------------------- files


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary path beside ``path``; moves it onto ``path`` on success.

    Readers never see a half-written file: either the old file (or none) or the
    complete new one. On an exception the temporary file is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def replace_folder(staging: Path, target: Path) -> None:
    """Moves the finished folder ``staging`` onto ``target``: readers never see a half-written ``target``.

    ``staging`` must be on the same file system (e.g. a temporary folder beside ``target``).
    """
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.replace(target, old / target.name)
    os.replace(staging, target)
    if old is not None:
        shutil.rmtree(old)


def data_dir() -> Path:
    """Folder for downloaded zips and the preprocessed cache ($OMNIGLOT_DATA_DIR)."""
    return Path(os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR)


def _download(url: str, destination: Path, progress: bool) -> None:
    """Downloads ``url`` to ``destination``; only a verified release zip lands there."""
    from tqdm import tqdm

    try:
        response = urllib.request.urlopen(url, timeout=60)
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise OmniglotDataError(
            f"Could not download {url}: {reason}.\n"
            f"If this machine is offline, copy images_background.zip and "
            f"images_evaluation.zip from {OFFICIAL_URL} onto it and set "
            f"{MIRROR_ENV}=/path/to/that/folder (a URL base also works)."
        ) from error
    total = int(response.headers.get("Content-Length") or 0) or None
    with response, atomic_output(destination) as tmp, open(tmp, "wb") as out, tqdm(
        total=total, unit="B", unit_scale=True, desc=f"download {destination.name}",
        disable=not progress,
    ) as bar:
        while chunk := response.read(1 << 16):
            out.write(chunk)
            bar.update(len(chunk))
        out.close()
        verify_zip(tmp, name=destination.name)


def _expected_sha256(folder: Path) -> dict[str, str]:
    """Checksums from a mirror's optional SHA256SUMS file (``HASH  NAME`` lines)."""
    sums = folder / "SHA256SUMS"
    if not sums.is_file():
        return {}
    pairs = (line.split() for line in sums.read_text().splitlines() if line.strip())
    return {name.lstrip("*"): digest for digest, name in pairs}


def _characters(members: list[str], zip_name: str) -> dict[str, list[str]]:
    """Groups a release zip's member names into {character folder: sorted PNG names}."""
    root = zip_name.removesuffix(".zip")
    characters: dict[str, list[str]] = {}
    for member in members:
        parts = member.split("/")
        if member.endswith(".png") and len(parts) == 4 and parts[0] == root:
            characters.setdefault("/".join(parts[:3]), []).append(member)
    return {folder: sorted(files) for folder, files in sorted(characters.items())}


def verify_zip(path: Path, expected_sha256: str | None = None, name: str | None = None) -> dict[str, list[str]]:
    """Checks one release zip and returns {character folder: sorted PNG members}.

    Args:
        path: the zip file.
        expected_sha256: checksum to compare with, if known.
        name: which release file it should be (default: ``path.name``).

    Raises:
        OmniglotDataError: the file is not a zip, fails its CRC or checksum, or
            does not hold exactly the alphabets, characters and 20 drawings per
            character of the official release.
    """
    name = name or path.name
    fix = f"Delete or replace {path} and run `python load_data.py` again."
    if name not in RELEASE:
        raise OmniglotDataError(f"{path} is not one of the release files {sorted(RELEASE)}.")
    if expected_sha256 is not None:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != expected_sha256:
            raise OmniglotDataError(
                f"{path} has SHA-256 {digest}, but its SHA256SUMS says {expected_sha256}: "
                f"the copy is damaged. Replace it with the official file."
            )
    if not zipfile.is_zipfile(path):
        raise OmniglotDataError(f"{path} is not a zip file (truncated download?). {fix}")
    try:
        with zipfile.ZipFile(path) as archive:
            bad_member = archive.testzip()
            members = archive.namelist()
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as error:
        raise OmniglotDataError(f"{path} is corrupt ({error}). {fix}") from error
    if bad_member is not None:
        raise OmniglotDataError(f"{path} is corrupt: {bad_member} fails its CRC check. {fix}")

    characters = _characters(members, name)
    num_alphabets, num_characters = RELEASE[name]
    alphabets = {folder.split("/")[1] for folder in characters}
    wrong = {folder: len(files) for folder, files in characters.items() if len(files) != NUM_DRAWINGS}
    if len(alphabets) != num_alphabets or len(characters) != num_characters or wrong:
        detail = f"; characters without exactly {NUM_DRAWINGS} drawings: {dict(list(wrong.items())[:3])}" if wrong else ""
        raise OmniglotDataError(
            f"{path} holds {len(alphabets)} alphabets and {len(characters)} characters, "
            f"expected {num_alphabets} and {num_characters} with {NUM_DRAWINGS} drawings each"
            f"{detail}. It is not the official release or it is incomplete. {fix}"
        )
    return characters


def fetch_release(progress: bool = True) -> dict[str, Path]:
    """Returns {zip name: verified local path} for both release zips.

    Order of preference: a verified copy already in ``data_dir()``; the mirror
    named by $OMNIGLOT_MIRROR (a local folder is used in place, a URL base is
    downloaded from); the official location.
    """
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    paths = {}
    for name in RELEASE:
        local = data_dir() / name
        if mirror and "://" not in mirror:
            folder = Path(mirror).expanduser()
            candidate = folder / name
            if not candidate.is_file():
                raise OmniglotDataError(
                    f"{MIRROR_ENV}={mirror} names a folder without {name}. Put both "
                    f"{' and '.join(RELEASE)} there, or unset {MIRROR_ENV} to download."
                )
            verify_zip(candidate, _expected_sha256(folder).get(name))
            paths[name] = candidate
            continue
        if not local.is_file():
            base = mirror or OFFICIAL_URL
            _download(base.rstrip("/") + "/" + name, local, progress)
        else:
            verify_zip(local)
        paths[name] = local
    return paths


# ---------------------------------------------------------------- preprocessing


def _decode(png: bytes) -> np.ndarray:
    """105x105 1-bit PNG -> 28x28 uint8 ink intensity (255 = full ink)."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        if image.size != (SOURCE_SIZE, SOURCE_SIZE):
            raise OmniglotDataError(f"a drawing is {image.size}, expected {SOURCE_SIZE}x{SOURCE_SIZE}")
        small = image.convert("L").resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.LANCZOS)
    return 255 - np.asarray(small, dtype=np.uint8)


def _preprocess(paths: dict[str, Path], progress: bool) -> tuple[np.ndarray, np.ndarray]:
    from tqdm import tqdm

    images = np.empty((NUM_CHARACTERS, NUM_DRAWINGS, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    names = []
    with tqdm(total=NUM_CHARACTERS, desc="preprocess characters", disable=not progress) as bar:
        for name in RELEASE:
            with zipfile.ZipFile(paths[name]) as archive:
                for folder, members in _characters(archive.namelist(), name).items():
                    for j, member in enumerate(members):
                        images[len(names), j] = _decode(archive.read(member))
                    names.append(folder)
                    bar.update()
    return images, np.array(names)


class Omniglot(NamedTuple):
    """All of Omniglot, preprocessed.

    Attributes:
        images: float32 array of shape (1623, 20, 28, 28), ink 1.0, background 0.0.
        names: str array of shape (1623,), e.g. "images_background/Korean/character07".
    """

    images: np.ndarray
    names: np.ndarray


def load_omniglot(progress: bool = True, scaled: bool = True) -> Omniglot:
    """Loads the preprocessed data set, fetching and preprocessing on first use.

    Args:
        progress: show progress bars while fetching and preprocessing.
        scaled: images as float32 in [0, 1] (``Omniglot``'s documented form); False: the stored uint8
            values 0..255 (a quarter of the memory; ``images.astype(np.float32) / 255`` gives the same numbers).
    """
    cache = data_dir() / CACHE_NAME
    if not cache.is_file():
        paths = fetch_release(progress)
        images, names = _preprocess(paths, progress)
        with atomic_output(cache) as tmp, open(tmp, "wb") as out:
            np.savez(out, images=images, names=names)
    try:
        with np.load(cache) as stored:
            images, names = stored["images"], stored["names"]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        raise OmniglotDataError(f"The cache {cache} is unreadable ({error}); delete it and run again.") from error
    if images.shape != (NUM_CHARACTERS, NUM_DRAWINGS, IMAGE_SIZE, IMAGE_SIZE):
        raise OmniglotDataError(f"The cache {cache} has shape {images.shape}; delete it and run again.")
    if not scaled:
        return Omniglot(images, names)
    images = images.astype(np.float32)
    images /= 255.0  # in place: one float32 copy of the data set (100 MB), not two
    return Omniglot(images, names)


def split_characters(num_characters: int = NUM_CHARACTERS, seed: int = SPLIT_SEED) -> dict[str, np.ndarray]:
    """Deterministic split of character indices into 1100 train / 100 val / 423 test."""
    if num_characters != sum(SPLIT_SIZES.values()):
        raise ValueError(f"the split needs {sum(SPLIT_SIZES.values())} characters, got {num_characters}")
    order = np.random.default_rng(seed).permutation(num_characters)
    splits, start = {}, 0
    for split, size in SPLIT_SIZES.items():
        splits[split] = np.sort(order[start:start + size])
        start += size
    return splits


# --------------------------------------------------------------------- tasks


class Task(NamedTuple):
    """One N-way K-shot task with Q queries per class.

    Attributes:
        images_support: float32 array of shape (N*K, 28, 28, 1).
        labels_support: int32 array of shape (N*K,), values in [0, N).
        images_query: float32 array of shape (N*Q, 28, 28, 1).
        labels_query: int32 array of shape (N*Q,), values in [0, N).
    """

    images_support: np.ndarray
    labels_support: np.ndarray
    images_query: np.ndarray
    labels_query: np.ndarray


class TaskSampler:
    """Samples reproducible N-way K-shot tasks from one split of Omniglot.

    Task ``i`` is a pure function of (split, seed, i): ``sampler.task(i)`` gives the
    same task every time, on every machine. Within a task the N classes are drawn
    without replacement, each class gets a random label, support and query drawings
    are disjoint, and examples come in random order.

    Args:
        data: the output of ``load_omniglot()``.
        split: "train", "val" or "test".
        num_way: N, classes per task.
        num_support: K, support drawings per class.
        num_query: Q, query drawings per class.
        seed: seed of the task stream.
        augment_rotations: train split only; adds each character rotated by 90,
            180 and 270 degrees as three new classes (as in the MAML paper).
    """

    def __init__(self, data: Omniglot, split: str, num_way: int, num_support: int,
                 num_query: int, seed: int = 0, augment_rotations: bool = False):
        if split not in SPLIT_SIZES:
            raise ValueError(f"split must be one of {list(SPLIT_SIZES)}, got {split!r}")
        for arg, value in (("num_way", num_way), ("num_support", num_support), ("num_query", num_query)):
            if int(value) != value or value <= 0:
                raise ValueError(f"{arg} must be a positive integer, got {value!r}")
        if augment_rotations and split != "train":
            raise ValueError("augment_rotations applies to the train split only")
        self.characters = split_characters(len(data.images))[split]
        self.rotations = 4 if augment_rotations else 1
        num_classes = len(self.characters) * self.rotations
        if num_way > num_classes:
            raise ValueError(f"num_way={num_way} exceeds the {num_classes} classes of the {split!r} split")
        if num_support + num_query > NUM_DRAWINGS:
            raise ValueError(
                f"num_support + num_query = {num_support + num_query} exceeds the "
                f"{NUM_DRAWINGS} drawings per character"
            )
        self.images = data.images
        self.split, self.seed = split, seed
        self.num_way, self.num_support, self.num_query = num_way, num_support, num_query
        self.num_classes = num_classes

    def draw(self, index: int) -> tuple[np.ndarray, np.ndarray, np.random.Generator]:
        """What task ``index`` is made of, before any image is touched.

        Returns:
            classes: (N,) int, the class behind label j (a character, or with
                rotations ``4 * character position + quarter turns``).
            drawings: (N, K+Q) int, drawing numbers per label; the first K are
                the support drawings, the other Q the query drawings.
            rng: the task's generator, positioned after these draws.
        """
        rng = np.random.default_rng([self.seed, index])
        classes = rng.choice(self.num_classes, size=self.num_way, replace=False)
        k_plus_q = self.num_support + self.num_query
        drawings = np.stack([rng.permutation(NUM_DRAWINGS)[:k_plus_q] for _ in range(self.num_way)])
        return classes, drawings, rng

    def task(self, index: int) -> Task:
        """Returns task number ``index`` of this sampler's stream."""
        classes, drawings, rng = self.draw(index)
        n, k, q = self.num_way, self.num_support, self.num_query
        characters = self.characters[classes // self.rotations]
        images = self.images[characters[:, None], drawings]  # (n, k+q, 28, 28)
        for label, turns in enumerate(classes % self.rotations):
            images[label] = np.rot90(images[label], k=turns, axes=(1, 2))
        labels = np.broadcast_to(np.arange(n, dtype=np.int32)[:, None], (n, k + q))

        def flat(part: slice, count: int) -> tuple[np.ndarray, np.ndarray]:
            order = rng.permutation(n * count)
            x = images[:, part].reshape(n * count, IMAGE_SIZE, IMAGE_SIZE, 1)[order]
            return np.ascontiguousarray(x, np.float32), labels[:, part].reshape(-1)[order]

        return Task(*flat(slice(0, k), k), *flat(slice(k, k + q), q))

    def batch(self, index: int, batch_size: int) -> list[Task]:
        """Returns meta-batch number ``index``: tasks index*B .. index*B + B - 1."""
        return [self.task(index * batch_size + i) for i in range(batch_size)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.parse_args()
    start = time.perf_counter()
    data = load_omniglot()
    splits = split_characters(len(data.images))
    print(f"Omniglot ready in {data_dir()}: {data.images.shape[0]} characters x "
          f"{data.images.shape[1]} drawings of {IMAGE_SIZE}x{IMAGE_SIZE} "
          f"({time.perf_counter() - start:.1f} s); split "
          + ", ".join(f"{name} {len(ids)}" for name, ids in splits.items()))


if __name__ == "__main__":
    main()
