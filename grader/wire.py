"""The messages between the grader and the process running student code.

A message is a tree of plain values (None, bool, int, float, str, list,
tuple, dict) and numpy arrays, sent as::

    MAGIC (4 bytes) | header length (8 bytes) | data length (8 bytes) | header (JSON) | data

The header is the tree in JSON, with each array replaced by
``{"__array__": i}`` and described in ``header["arrays"][i]`` (dtype, shape,
offset into data). Nothing is ever unpickled: the reader accepts only the
JSON forms below and arrays of the dtypes in ``DTYPES``, checks every size
against its limits before reading, and raises ``WireError`` on anything else.
That matters because one side is the student's process, which can write
anything to its pipe.

Values the writer cannot send (a model object, a symbolic tensor, a function)
become ``Opaque(type name)``, so a check can say "expected a dict, got
Sequential" instead of crashing.
"""

from __future__ import annotations

import json
import math
import os
import select
import struct
import time

MAGIC = b"GRW1"
_PREFIX = struct.Struct("<4sQQ")
MAX_HEADER_BYTES = 16 * 2**20
MAX_DEPTH = 32
MAX_STRING = 100_000  # characters of one string (longer ones are cut)
DTYPES = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
          "float16", "float32", "float64", "complex64", "complex128")


class WireError(ValueError):
    """A message that is malformed, too large, or not there in time."""


class Opaque:
    """A value the other side could not send as data; ``type_name`` says what it was."""

    def __init__(self, type_name: str):
        self.type_name = str(type_name)[:200]

    def __repr__(self) -> str:
        return f"<{self.type_name}>"

    def __eq__(self, other) -> bool:
        return isinstance(other, Opaque) and other.type_name == self.type_name

    __hash__ = None


def _type_name(value) -> str:
    kind = type(value)
    module = getattr(kind, "__module__", "")
    return kind.__name__ if module in ("builtins", "") else f"{module}.{kind.__qualname__}"


def _as_array(value):
    """numpy array for an array-like the student's code may return (tensor, variable), else None."""
    import numpy as np

    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, np.generic):
        return np.asarray(value)
    if hasattr(value, "numpy") and callable(value.numpy) and hasattr(value, "dtype"):
        try:
            array = value.numpy()
        except Exception:  # noqa: BLE001 - e.g. a symbolic tensor: sent as Opaque
            return None
        return np.asarray(array) if isinstance(array, (np.ndarray, np.generic)) else None
    return None


def encode(tree) -> bytes:
    """One message holding ``tree`` (anything; what cannot be sent becomes Opaque)."""
    arrays: list = []
    chunks: list[bytes] = []
    offset = 0

    def visit(value, depth: int):
        nonlocal offset
        if depth > MAX_DEPTH:
            return {"__opaque__": "nesting too deep"}
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, int):
            return value if abs(value) < 2**63 else float(value)
        if isinstance(value, float):
            return value if math.isfinite(value) else {"__float__": repr(value)}
        if isinstance(value, str):
            return value[:MAX_STRING]
        if isinstance(value, Opaque):
            return {"__opaque__": value.type_name}
        if isinstance(value, dict):
            return {"__dict__": [[visit(k, depth + 1), visit(v, depth + 1)] for k, v in value.items()]}
        if isinstance(value, tuple):
            return {"__tuple__": [visit(v, depth + 1) for v in value]}
        if isinstance(value, list):
            return [visit(v, depth + 1) for v in value]
        array = _as_array(value)
        if array is None or array.dtype.name not in DTYPES:
            return {"__opaque__": _type_name(value)}
        data = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes(order="C")
        arrays.append({"dtype": array.dtype.name, "shape": list(array.shape), "offset": offset,
                       "nbytes": len(data)})
        chunks.append(data)
        offset += len(data)
        return {"__array__": len(arrays) - 1}

    header = json.dumps({"tree": visit(tree, 0), "arrays": arrays}, allow_nan=False).encode("utf-8")
    return _PREFIX.pack(MAGIC, len(header), offset) + header + b"".join(chunks)


def decode(header_bytes: bytes, data: bytes):
    """The tree of one message (header and data already read); WireError if malformed."""
    try:
        header = json.loads(header_bytes.decode("utf-8"))
        specs = header["arrays"]
        tree = header["tree"]
        if not isinstance(specs, list):
            raise TypeError("arrays is not a list")
    except (ValueError, KeyError, TypeError) as error:
        raise WireError(f"malformed header ({error})") from None
    arrays = []
    if specs:
        import numpy as np
    for spec in specs:
        try:
            dtype, shape, offset, nbytes = spec["dtype"], spec["shape"], spec["offset"], spec["nbytes"]
            if dtype not in DTYPES or not all(isinstance(n, int) and n >= 0 for n in [*shape, offset, nbytes]):
                raise ValueError(f"bad array description {spec!r}"[:200])
            kind = np.dtype(dtype).newbyteorder("<")
            if math.prod(shape) * kind.itemsize != nbytes or offset + nbytes > len(data):
                raise ValueError("array sizes do not add up")
            arrays.append(np.frombuffer(data, kind, count=math.prod(shape), offset=offset)
                          .reshape(shape).astype(kind.newbyteorder("="), copy=True))
        except (KeyError, TypeError, ValueError) as error:
            raise WireError(f"malformed array ({error})") from None

    def build(node, depth: int):
        if depth > MAX_DEPTH + 1:
            raise WireError("nesting too deep")
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, list):
            return [build(v, depth + 1) for v in node]
        if isinstance(node, dict) and len(node) == 1:
            (key, value), = node.items()
            if key == "__array__" and isinstance(value, int) and 0 <= value < len(arrays):
                return arrays[value]
            if key == "__tuple__" and isinstance(value, list):
                return tuple(build(v, depth + 1) for v in value)
            if key == "__dict__" and isinstance(value, list):
                out = {}
                for pair in value:
                    if not (isinstance(pair, list) and len(pair) == 2):
                        raise WireError("malformed dict entry")
                    k = build(pair[0], depth + 1)
                    try:
                        out[k] = build(pair[1], depth + 1)
                    except TypeError:  # an unhashable key
                        out[Opaque(f"unhashable key {type(k).__name__}")] = build(pair[1], depth + 1)
                return out
            if key == "__opaque__" and isinstance(value, str):
                return Opaque(value)
            if key == "__float__" and value in ("nan", "inf", "-inf"):
                return float(value)
        raise WireError(f"unexpected value in message: {str(node)[:80]}")

    return build(tree, 0)


def loads(message: bytes):
    """The tree of one complete message held in ``message`` (what ``encode`` returned)."""
    if len(message) < _PREFIX.size:
        raise WireError("a message shorter than its prefix")
    magic, header_length, data_length = _PREFIX.unpack(message[:_PREFIX.size])
    if magic != MAGIC or _PREFIX.size + header_length + data_length != len(message):
        raise WireError("not one complete grader message")
    start = _PREFIX.size + header_length
    return decode(message[_PREFIX.size:start], message[start:])


def write_message(fd: int, tree) -> None:
    """Sends ``tree`` on the file descriptor (blocking)."""
    view = memoryview(encode(tree))
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _read_exactly(fd: int, count: int, deadline: float | None) -> bytes:
    parts, remaining = [], count
    while remaining:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError
        chunk = os.read(fd, min(remaining, 2**20))
        if not chunk:
            raise EOFError
        parts.append(chunk)
        remaining -= len(chunk)
    return b"".join(parts)


def read_message(fd: int, *, max_bytes: int, deadline: float | None = None):
    """Reads one message.

    Raises:
        TimeoutError: nothing complete arrived before ``deadline`` (time.monotonic()).
        EOFError: the other side closed the pipe (e.g. its process ended).
        WireError: the bytes are not a message, or it is larger than ``max_bytes``.
    """
    magic, header_length, data_length = _PREFIX.unpack(_read_exactly(fd, _PREFIX.size, deadline))
    if magic != MAGIC:
        raise WireError("the bytes on the grader's channel are not a grader message")
    if header_length > MAX_HEADER_BYTES or header_length + data_length > max_bytes:
        raise WireError(f"a message of {(header_length + data_length) / 2**20:.1f} MB, more than the limit "
                        f"of {max_bytes / 2**20:.0f} MB")
    header = _read_exactly(fd, header_length, deadline)
    data = _read_exactly(fd, data_length, deadline)
    return decode(header, data)
