"""Download, verify and read MNIST, FashionMNIST and CIFAR-10 in their original formats.

Every file has pinned URLs (a mirror list) and a pinned SHA-256. :func:`fetch` downloads into a temporary file
in the data folder, hashing while it streams, and only a file whose checksum matches is moved into place with
:func:`os.replace`; an interrupted or corrupted download never leaves a file under the final name. Network
errors are retried (with a short back-off) and then the next mirror is tried. When nothing works (offline, or
every mirror serves different bytes) the error says which files to fetch by hand and where to put them.

The readers are our own and small: IDX (optionally gzip-compressed) for MNIST and FashionMNIST, and the
CIFAR-10 **binary** version (fixed 3073-byte records: one label byte and 3x32x32 pixel bytes, read straight
out of the tar archive with :mod:`tarfile`, nothing extracted to disk). Nothing downloaded is ever unpickled;
the python version of CIFAR-10 is therefore not supported. Parsed CIFAR-10 arrays are kept in an ``.npz``
next to the archive (written by us, read with ``allow_pickle=False``) because decompressing the archive takes
a few seconds.

The data folder is the ``root`` argument, else ``$PNC_DATA_DIR``, else ``<user cache dir>/pnc/data``
(``~/.cache/pnc/data`` on Linux); see :func:`data_dir`.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from pnc.cache import atomic_write, atomic_write_npz, load_npz, sha256_file, user_cache_dir

_log = logging.getLogger("pnc.download")

__all__ = [
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "ChecksumError",
    "DATASET_FILES",
    "DatasetSource",
    "DownloadError",
    "RemoteFile",
    "data_dir",
    "download_dataset",
    "fetch",
    "SYSTEM_FOLDERS",
    "load",
    "locate",
    "manual_instructions",
    "read_cifar10_binary",
    "read_idx",
]


class DownloadError(OSError):
    """A file could not be downloaded (offline, HTTP error, ...); the message says how to fetch it by hand."""


class ChecksumError(DownloadError):
    """A downloaded or cached file does not have its pinned SHA-256."""


@dataclass(frozen=True)
class RemoteFile:
    """One file of a data set: its name in the data folder, SHA-256, size in bytes and mirror URLs.

    ``content_sha256`` is the SHA-256 of the *decompressed* content of a ``.gz`` file: copies that were compressed
    again (Debian's ``dataset-fashion-mnist`` omits the file name from the gzip header, so its ``.gz`` bytes differ
    from upstream's) are verified by it.
    """

    name: str
    sha256: str
    size: int | None
    urls: tuple[str, ...]
    content_sha256: str | None = None


def _mirrors(bases: tuple[str, ...], name: str) -> tuple[str, ...]:
    return tuple(base.rstrip("/") + "/" + name for base in bases)


_MNIST_BASES = ("https://ossci-datasets.s3.amazonaws.com/mnist", "https://storage.googleapis.com/cvdf-datasets/mnist")
_FASHION_BASES = (
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion",
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com",
)

# SHA-256 sums and sizes as published by the data set authors' mirrors (identical in TensorFlow Datasets,
# PyTorch's mirror list and the Fashion-MNIST README); the MD5 sums of the same files are the ones the
# original pages list.
DATASET_FILES: dict[str, dict[str, RemoteFile]] = {
    "mnist": {
        "train_images": RemoteFile(
            "train-images-idx3-ubyte.gz",
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            9912422,
            _mirrors(_MNIST_BASES, "train-images-idx3-ubyte.gz"),
        ),
        "train_labels": RemoteFile(
            "train-labels-idx1-ubyte.gz",
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            28881,
            _mirrors(_MNIST_BASES, "train-labels-idx1-ubyte.gz"),
        ),
        "test_images": RemoteFile(
            "t10k-images-idx3-ubyte.gz",
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            1648877,
            _mirrors(_MNIST_BASES, "t10k-images-idx3-ubyte.gz"),
        ),
        "test_labels": RemoteFile(
            "t10k-labels-idx1-ubyte.gz",
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            4542,
            _mirrors(_MNIST_BASES, "t10k-labels-idx1-ubyte.gz"),
        ),
    },
    "fashion_mnist": {
        "train_images": RemoteFile(
            "train-images-idx3-ubyte.gz",
            "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            26421880,
            _mirrors(_FASHION_BASES, "train-images-idx3-ubyte.gz"),
            content_sha256="c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        ),
        "train_labels": RemoteFile(
            "train-labels-idx1-ubyte.gz",
            "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            29515,
            _mirrors(_FASHION_BASES, "train-labels-idx1-ubyte.gz"),
            content_sha256="bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        ),
        "test_images": RemoteFile(
            "t10k-images-idx3-ubyte.gz",
            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            4422102,
            _mirrors(_FASHION_BASES, "t10k-images-idx3-ubyte.gz"),
            content_sha256="5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        ),
        "test_labels": RemoteFile(
            "t10k-labels-idx1-ubyte.gz",
            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
            5148,
            _mirrors(_FASHION_BASES, "t10k-labels-idx1-ubyte.gz"),
            content_sha256="0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        ),
    },
    "cifar10": {
        "archive": RemoteFile(
            "cifar-10-binary.tar.gz",
            "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
            170052171,
            ("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",),
        ),
    },
}

# Per-channel input statistics used by normalize=True (intensities first scaled to [0, 1]). CIFAR-10: the
# authors' values (their code); MNIST and FashionMNIST: the usual published training-set values.
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2023, 0.1994, 0.2010)
_CHANNEL_STATS = {
    "mnist": ((0.1307,), (0.3081,)),
    "fashion_mnist": ((0.2860,), (0.3530,)),
    "cifar10": (CIFAR10_MEAN, CIFAR10_STD),
}

SYSTEM_FOLDERS: dict[str, tuple[Path, ...]] = {
    "fashion_mnist": (Path("/usr/share/datasets/fashion-mnist"),),
}
"""Where operating-system packages install a data set (Debian: ``apt-get install dataset-fashion-mnist``)."""

SYSTEM_PACKAGES = {"fashion_mnist": "dataset-fashion-mnist"}
"""The Debian package that installs each data set of :data:`SYSTEM_FOLDERS`."""

_urlopen: Callable[..., Any] = urllib.request.urlopen
"""The opener :func:`fetch` uses (tests replace it)."""
_VERIFIED: dict[tuple[str, int, int], str] = {}


def data_dir(root: str | os.PathLike[str] | None = None) -> Path:
    """Data folder: ``root`` if given, else ``$PNC_DATA_DIR``, else ``<user cache dir>/pnc/data``."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("PNC_DATA_DIR")
    return Path(env).expanduser() if env else user_cache_dir() / "data"


def _dataset_files(name: str) -> dict[str, RemoteFile]:
    if name not in DATASET_FILES:
        raise ValueError(f"no downloadable data set {name!r}; known: {tuple(DATASET_FILES)}")
    return DATASET_FILES[name]


def manual_instructions(name: str, root: str | os.PathLike[str] | None = None) -> str:
    """How to put a data set's files in place by hand (URLs, target folder, SHA-256 sums)."""
    folder = data_dir(root) / name
    lines = [f"To install {name} by hand, download these files into {folder} (keep the names):"]
    for f in _dataset_files(name).values():
        lines.append(f"  {f.name}  from {' or '.join(f.urls)}")
        lines.append(f"    sha256 {f.sha256}")
    lines.append("(or set PNC_DATA_DIR, or pass root=..., to use another data folder)")
    return "\n".join(lines)


def _verified(path: Path, sha256: str) -> bool:
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _VERIFIED:
        _VERIFIED[key] = sha256_file(path)
    return _VERIFIED[key] == sha256


def _content_verified(path: Path, file: RemoteFile) -> bool:
    """``path`` has ``file``'s pinned bytes, or (for a ``.gz`` with a pinned content hash) its pinned content."""
    if _verified(path, file.sha256):
        return True
    if file.content_sha256 is None:
        return False
    st = path.stat()
    key = (str(path.resolve()) + "#content", st.st_size, st.st_mtime_ns)
    if key not in _VERIFIED:
        digest = hashlib.sha256()
        try:
            with gzip.open(path, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
            _VERIFIED[key] = digest.hexdigest()
        except (OSError, EOFError):  # not gzip, or truncated
            _VERIFIED[key] = ""
    return _VERIFIED[key] == file.content_sha256


@dataclass(frozen=True)
class DatasetSource:
    """Where :func:`locate` found a data set: ``origin`` is ``"data folder"``, ``"system package"`` or
    ``"download"``; ``paths`` maps each file's role to its verified path; ``skipped`` lists copies that were found
    but failed verification."""

    name: str
    origin: str
    folder: Path
    paths: dict[str, Path]
    skipped: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line for a reader: which copy of the data set is used."""
        where = {"data folder": "the data folder", "system package": f"the {SYSTEM_PACKAGES.get(self.name, 'system')} "
                 "package", "download": "a verified download"}[self.origin]
        return f"{self.name} from {where} ({self.folder})"


def _complete_copy(name: str, folder: Path, skipped: list[str]) -> dict[str, Path] | None:
    files = _dataset_files(name)
    present = {role: folder / f.name for role, f in files.items() if (folder / f.name).exists()}
    if not present:
        return None
    bad = [str(path) for role, path in present.items() if not _content_verified(path, files[role])]
    if bad:
        skipped.extend(f"{path} (checksum mismatch)" for path in bad)
        return None
    if len(present) < len(files):
        skipped.append(f"{folder} (only {sorted(p.name for p in present.values())} of {len(files)} files)")
        return None
    return present


def locate(
    name: str, root: str | os.PathLike[str] | None = None, download: bool = True, progress: bool = False,
    **fetch_options: Any,
) -> DatasetSource:
    """Find a verified copy of data set ``name``: the data folder (``root``, ``$PNC_DATA_DIR`` or the user cache), then
    an operating-system package's folder (:data:`SYSTEM_FOLDERS`), then a download into the data folder.

    A copy is used only if every file has its pinned SHA-256 (or, for re-compressed ``.gz`` files, its pinned
    decompressed content); copies that fail are listed in :attr:`DatasetSource.skipped` and never used.

    Raises:
        DownloadError: nothing verified was found and ``download=False`` (or the download failed); the message says
            what was found, how to install the system package and how to place the files by hand.
    """
    files = _dataset_files(name)
    folder = data_dir(root) / name
    skipped: list[str] = []
    local = _complete_copy(name, folder, skipped)
    if local is not None:
        return DatasetSource(name, "data folder", folder, local, tuple(skipped))
    for system in SYSTEM_FOLDERS.get(name, ()):
        found = _complete_copy(name, system, skipped)
        if found is not None:
            return DatasetSource(name, "system package", system, found, tuple(skipped))
    package = SYSTEM_PACKAGES.get(name)
    apt = f"\nOn Debian or Ubuntu: sudo apt-get install {package}, which pnc finds by itself." if package else ""
    seen = f"\nFound but not used: {'; '.join(skipped)}." if skipped else ""
    if not download:
        raise DownloadError(f"no verified copy of {name} and download=False.{seen}{apt}\n"
                            f"{manual_instructions(name, root)}")
    try:
        paths = {role: fetch(f, folder, download=True, progress=progress, **fetch_options)
                 for role, f in files.items()}
    except DownloadError as err:
        raise type(err)(f"{err}{seen}{apt}") from None
    return DatasetSource(name, "download", folder, paths, tuple(skipped))


def _stream_to(url: str, fh: BinaryIO, timeout: float, progress: bool) -> str:
    """Stream ``url`` into ``fh``; return the SHA-256 of what was written."""
    h = hashlib.sha256()
    with _urlopen(url, timeout=timeout) as resp:
        headers = getattr(resp, "headers", None)
        length = headers.get("Content-Length") if headers is not None else None
        total = int(length) if length is not None and str(length).isdigit() else None
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=total, unit="B", unit_scale=True, desc=url.rsplit("/", 1)[-1])
        try:
            while block := resp.read(1 << 20):
                fh.write(block)
                h.update(block)
                if bar is not None:
                    bar.update(len(block))
        finally:
            if bar is not None:
                bar.close()
    return h.hexdigest()


class _Mismatch(Exception):
    pass


def fetch(
    file: RemoteFile,
    folder: str | os.PathLike[str],
    download: bool = True,
    retries: int = 3,
    timeout: float = 60.0,
    backoff: float = 1.0,
    progress: bool = False,
) -> Path:
    """Return the path of ``file`` in ``folder``, downloading and verifying it first if needed.

    A file already present is checked against its SHA-256 (once per process); a wrong one raises
    :class:`ChecksumError` when ``download=False`` and is downloaded again (replacing it atomically) otherwise.
    Each mirror is tried ``retries`` times on network errors, waiting ``backoff * 2**attempt`` seconds.

    Raises:
        FileNotFoundError: the file is missing and ``download=False``.
        ChecksumError: every mirror served bytes with another SHA-256 (or the local file is corrupt).
        DownloadError: the file could not be downloaded (offline, HTTP errors).
    """
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 1:
        raise ValueError(f"retries must be an integer >= 1, got {retries!r}")
    folder = Path(folder)
    dest = folder / file.name
    hint = f"Put {file.name} (sha256 {file.sha256}) into {folder} by hand, from {' or '.join(file.urls)}."
    if dest.exists():
        if _verified(dest, file.sha256):
            return dest
        if not download:
            raise ChecksumError(f"{dest} is corrupt: its SHA-256 is not the pinned {file.sha256}. {hint}")
    elif not download:
        raise FileNotFoundError(f"{dest} is missing and download=False. {hint}")

    folder.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    mismatch = False
    for url in file.urls:
        for attempt in range(retries):
            try:
                with atomic_write(dest, "wb") as fh:
                    digest = _stream_to(url, fh, timeout, progress)
                    if digest != file.sha256:
                        raise _Mismatch(digest)
                st = dest.stat()
                _VERIFIED[(str(dest.resolve()), st.st_size, st.st_mtime_ns)] = digest
                return dest
            except _Mismatch as exc:
                mismatch = True
                errors.append(f"{url}: SHA-256 {exc.args[0]} instead of {file.sha256}")
                break  # the same mirror would serve the same bytes; try the next one
            except urllib.error.HTTPError as exc:
                errors.append(f"{url}: HTTP {exc.code} {exc.reason}")
                if exc.code in (403, 404, 410):
                    break
            except (urllib.error.URLError, OSError, TimeoutError) as exc:
                errors.append(f"{url}: {getattr(exc, 'reason', None) or exc}")
            if attempt + 1 < retries:
                time.sleep(backoff * 2**attempt)
    detail = "\n  ".join(errors)
    if mismatch:
        raise ChecksumError(f"downloaded {file.name} does not match its pinned SHA-256:\n  {detail}\n{hint}")
    raise DownloadError(f"could not download {file.name} (offline?):\n  {detail}\n{hint}")


def download_dataset(
    name: str, root: str | os.PathLike[str] | None = None, download: bool = True, progress: bool = False, **kwargs: Any
) -> dict[str, Path]:
    """Fetch (or verify) every file of ``name`` into ``data_dir(root)/name``; return their paths by role."""
    folder = data_dir(root) / name
    return {
        role: fetch(f, folder, download=download, progress=progress, **kwargs)
        for role, f in _dataset_files(name).items()
    }


# --------------------------------------------------------------------------------------------------- readers

_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(source: str | os.PathLike[str] | bytes) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzip-compressed or not, from a path or from bytes.

    Header: two zero bytes, a type code (0x08 ubyte, 0x09 byte, 0x0B int16, 0x0C int32, 0x0D float32,
    0x0E float64), the number of dimensions, then each dimension as a big-endian uint32; then the data.
    Raises ``ValueError`` on a malformed file.
    """
    raw = source if isinstance(source, bytes) else Path(source).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise ValueError(f"corrupt gzip data in IDX file: {exc}") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError("not an IDX file (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise ValueError("truncated IDX header")
    shape = tuple(int(v) for v in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(f"IDX data size {len(raw) - header} does not match shape {shape} ({expected} bytes)")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


_CIFAR_RECORD = 1 + 3 * 32 * 32
_CIFAR_MEMBERS = {
    "train": tuple(f"cifar-10-batches-bin/data_batch_{i}.bin" for i in range(1, 6)),
    "test": ("cifar-10-batches-bin/test_batch.bin",),
}


def read_cifar10_binary(archive: str | os.PathLike[str], split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Read the CIFAR-10 binary version straight from ``cifar-10-binary.tar.gz``.

    Returns ``(images, labels)``: ``uint8`` images of shape ``(N, 3, 32, 32)`` (channels R, G, B) and ``int64``
    labels. Each record is one label byte (0..9) and 3072 pixel bytes (the red plane, then green, then blue,
    each 32x32 row-major). Only the expected members are read, from memory; nothing is extracted to disk.
    Raises ``ValueError`` on a malformed archive.
    """
    if split not in _CIFAR_MEMBERS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    chunks = []
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member_name in _CIFAR_MEMBERS[split]:
                try:
                    member = tar.getmember(member_name)
                except KeyError as exc:
                    raise ValueError(f"{archive} has no member {member_name}") from exc
                fh = tar.extractfile(member) if member.isfile() else None
                if fh is None:
                    raise ValueError(f"{member_name} in {archive} is not a regular file")
                data = fh.read()
                if len(data) == 0 or len(data) % _CIFAR_RECORD:
                    raise ValueError(f"{member_name}: {len(data)} bytes is not a whole number of 3073-byte records")
                chunks.append(np.frombuffer(data, dtype=np.uint8).reshape(-1, _CIFAR_RECORD))
    except (tarfile.TarError, EOFError, gzip.BadGzipFile) as exc:
        raise ValueError(f"corrupt CIFAR-10 archive {archive}: {exc}") from exc
    records = np.concatenate(chunks)
    labels = records[:, 0].astype(np.int64)
    if labels.max() > 9:
        raise ValueError("CIFAR-10 labels must be 0..9; the archive is not the CIFAR-10 binary version")
    return records[:, 1:].reshape(-1, 3, 32, 32).copy(), labels


def _cifar_arrays(archive: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    cached = archive.parent / f"cifar10-{split}-{DATASET_FILES['cifar10']['archive'].sha256[:12]}.npz"
    if cached.exists():
        try:
            a = load_npz(cached)
            return a["images"], a["labels"]
        except (OSError, ValueError, KeyError):
            pass  # damaged: parse the archive again
    images, labels = read_cifar10_binary(archive, split)
    try:
        atomic_write_npz(cached, {"images": images, "labels": labels})
    except OSError:
        pass
    return images, labels


def load(
    name: str,
    split: str = "train",
    root: str | os.PathLike[str] | None = None,
    download: bool = True,
    dtype: torch.dtype = torch.float32,
    normalize: bool = True,
    flatten: bool = True,
    progress: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Load MNIST, FashionMNIST or CIFAR-10 (found by :func:`locate`: data folder, system package, or downloaded
    once); ``(X, y)`` with ``y`` int64. The copy used is logged (logger ``pnc.download``).

    ``X`` is ``(N, C*H*W)`` with ``flatten=True`` (``C=1, H=W=28`` or ``C=3, H=W=32``), else ``(N, C, H, W)``.
    Intensities are scaled to [0, 1]; ``normalize=True`` then standardises each channel with
    :data:`CIFAR10_MEAN`/:data:`CIFAR10_STD` (CIFAR-10) or the usual MNIST/FashionMNIST statistics.
    """
    _dataset_files(name)  # a clear error for an unknown name
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if dtype not in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        raise ValueError(f"dtype must be a torch floating dtype, got {dtype!r}")
    source = locate(name, root, download=download, progress=progress)
    _log.info("%s", source.describe())
    if name == "cifar10":
        images, labels = _cifar_arrays(source.paths["archive"], split)
    else:
        img_path, lab_path = source.paths[f"{split}_images"], source.paths[f"{split}_labels"]
        images = read_idx(img_path)
        labels = read_idx(lab_path).astype(np.int64)
        if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
            raise ValueError(f"{name} {split}: images {images.shape} and labels {labels.shape} do not match")
        images = images[:, None, :, :]
    x = torch.from_numpy(np.ascontiguousarray(images)).to(torch.float32) / 255.0
    if normalize:
        mean, std = _CHANNEL_STATS[name]
        x = (x - torch.tensor(mean).view(1, -1, 1, 1)) / torch.tensor(std).view(1, -1, 1, 1)
    if flatten:
        x = x.reshape(x.shape[0], -1)
    return x.to(dtype), torch.from_numpy(np.ascontiguousarray(labels, dtype=np.int64))

