"""LeRobot `image` features: PNG files stored inside the data parquet (HF `datasets.Image` columns).

On disk an image feature is a parquet column of type `struct<bytes: binary, path: string>` holding one
picture per frame. LeRobot writes it through HF `datasets` (`embed_images`): `bytes` is the whole PNG file
(RGB, written by Pillow with compress_level 6) and `path` its former file name, e.g. "frame-000012.png".
The parquet's `huggingface` schema metadata declares the column as `{"_type": "Image"}`, which is what
lets `datasets` (and LeRobot through it) decode the column to pictures. A row may instead carry null
`bytes` and a `path` to a file; LeRobot resolves such paths against the dataset root, and so do we (only
paths inside the root: an absolute path or one escaping it is refused, see paths.py).

Decoding gives what LeRobot returns through `datasets` + `ToTensor`: the stored pixels exactly (PNG is
lossless), channel first, uint8[3, H, W] here (the dataset divides by 255 for float32), with the EXIF
orientation applied when a file carries one (as `datasets` does). Any format Pillow opens is accepted,
as with `datasets`; the decoded size and channel count must equal the feature's `shape` in info.json.

Memory: `ImageColumn` keeps the selected episodes' column as the compressed arrow arrays (a few large
buffers, no per-frame Python objects) and decodes a frame only when an item asks for it. The resident
cost is the PNG bytes of the selected episodes (about the size of their data parquet files; restrict
`episodes=` to bound it). Because the buffers hold no refcounted objects, DataLoader workers forked from
the parent share them copy-on-write instead of duplicating them.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow as pa
from PIL import Image, ImageOps

from smolvla.data.meta import DatasetFormatError
from smolvla.data.paths import confine

IMAGE_STRUCT = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
HF_IMAGE_FEATURE = {"_type": "Image"}  # `datasets.Features.to_dict()` form of `datasets.Image()`
PNG_COMPRESS_LEVEL = 6  # what LeRobot passes to Pillow for `image` features (video staging PNGs use 1)
_EXIF_ORIENTATION = 0x0112
_Part = tuple[Path, pa.StructArray, np.ndarray]  # (data file, its kept rows' image structs, int64 row numbers)


def frame_file_name(frame_index: int) -> str:
    """The `path` LeRobot leaves in an embedded image row: the staging PNG's base name."""
    return f"frame-{frame_index:06d}.png"


def encode_png(frame: np.ndarray, compress_level: int = PNG_COMPRESS_LEVEL) -> bytes:
    """PNG file bytes of one uint8[H, W, 3] RGB frame."""
    if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"a PNG frame must be uint8[H, W, 3], got {frame.dtype}{list(frame.shape)}")
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(frame), mode="RGB").save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


def image_struct_array(frames: np.ndarray, compress_level: int = PNG_COMPRESS_LEVEL) -> pa.StructArray:
    """HF Image column of an episode: uint8[T, H, W, 3] -> struct{bytes: PNG, path: "frame-%06d.png"}[T]."""
    data = pa.array([encode_png(f, compress_level) for f in frames], type=pa.binary())
    names = pa.array([frame_file_name(i) for i in range(len(frames))], type=pa.string())
    return pa.StructArray.from_arrays([data, names], fields=list(IMAGE_STRUCT))


def check_image_column(column: pa.ChunkedArray | pa.Array, path: Path, key: str) -> pa.StructArray:
    """The column as one struct{bytes, path} array (large_binary/large_string accepted), else an error."""
    col = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    names = [col.type.field(i).name for i in range(col.type.num_fields)] if pa.types.is_struct(col.type) else []
    if "bytes" not in names or "path" not in names:
        raise DatasetFormatError(
            f"{path}: image feature {key!r} must be a struct<bytes: binary, path: string> column (HF Image), "
            f"got {col.type}"
        )
    return col


def decode_image(data: bytes, expected_hwc: tuple[int, ...], where: str) -> np.ndarray:
    """Decode one stored picture to uint8[C, H, W]; `where` names file/key/row/episode in errors."""
    h, w, c = expected_hwc
    try:
        with Image.open(io.BytesIO(data)) as img:
            # Checked from the header, before decoding: a wrong (possibly huge) picture costs nothing.
            # (h, w) is allowed here because an EXIF rotation below may still turn it into (w, h).
            if img.size not in ((w, h), (h, w)):
                raise DatasetFormatError(
                    f"{where}: image is {img.size[1]}x{img.size[0]} (HxW), info.json shape is {[h, w, c]}"
                )
            img.load()
            if img.getexif().get(_EXIF_ORIENTATION) is not None:
                img = ImageOps.exif_transpose(img)
            mode, arr = img.mode, np.asarray(img)
    except DatasetFormatError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise DatasetFormatError(f"{where}: cannot decode image ({type(e).__name__}: {e})") from e
    arr = arr[:, :, None] if arr.ndim == 2 else arr
    if arr.dtype != np.uint8 or arr.shape != (h, w, c):
        raise DatasetFormatError(
            f"{where}: decoded image is {arr.dtype}{list(arr.shape)} (Pillow mode {mode!r}), "
            f"expected uint8{[h, w, c]} from info.json"
        )
    return np.ascontiguousarray(arr.transpose(2, 0, 1))


class ImageColumn:
    """One image feature over the selected frames, decoded on demand (see the module docstring).

    Built from parts, one per data file: (file path, struct array of its kept rows, int64 row numbers of
    those rows inside the file). Row r of the column is the r-th kept frame over the parts in order.
    """

    def __init__(self, key: str, shape_hwc: list[int], root: Path, parts: list[_Part]):
        if len(shape_hwc) != 3:
            raise DatasetFormatError(f"{root}: image feature {key!r} needs shape [H, W, C], got {shape_hwc}")
        self.key = key
        self.shape = tuple(int(s) for s in shape_hwc)
        self.root = Path(root)
        self.files = [p for p, _, _ in parts]
        arrays = [a for _, a, _ in parts]
        self._data = pa.concat_arrays([a.field("bytes").cast(pa.large_binary()) for a in arrays])
        self._paths = pa.concat_arrays([a.field("path").cast(pa.large_string()) for a in arrays])
        self._valid = np.concatenate([a.is_valid().to_numpy(zero_copy_only=False) for a in arrays])
        self._file_of_row = np.concatenate([np.full(len(a), i, np.int32) for i, a in enumerate(arrays)])
        self._row_in_file = np.concatenate([np.asarray(rows, np.int64) for _, _, rows in parts])

    def __len__(self) -> int:
        return len(self._data)

    def _where(self, row: int, episode: int | None, index: int | None) -> str:
        ctx = [f"episode {episode}"] if episode is not None else []
        ctx += [f"index {index}"] if index is not None else []
        file = self.files[self._file_of_row[row]]
        where = f"{file} row {int(self._row_in_file[row])}: image feature {self.key!r}"
        return f"{where} ({', '.join(ctx)})" if ctx else where

    def _read_path(self, rel: str, where: str) -> bytes:
        path = confine(self.root, rel, where)
        if not path.is_file():
            raise FileNotFoundError(f"{where}: the row has no embedded bytes and its image file {path} is missing")
        return path.read_bytes()

    def decode(self, row: int, episode: int | None = None, index: int | None = None) -> np.ndarray:
        """uint8[C, H, W] of column row `row`; `episode`/`index` only enrich error messages."""
        row = int(row)
        if not self._valid[row]:
            raise DatasetFormatError(f"{self._where(row, episode, index)}: null image (neither bytes nor path)")
        data = self._data[row].as_py()
        if data is None:
            rel = self._paths[row].as_py()
            if rel is None:
                raise DatasetFormatError(f"{self._where(row, episode, index)}: image has neither bytes nor path")
            data = self._read_path(rel, self._where(row, episode, index))
        return decode_image(data, self.shape, self._where(row, episode, index))
