"""Minimal readers/writers for the two weight formats the training tools touch.

* safetensors: read and write (F32/F16/BF16), enough for Hugging Face folders.
* GGUF: read only (metadata + F32/F16 tensors), enough to load the oracle's mmproj and drafter
  files into the PyTorch model for tests. Quantized GGUF tensors are refused.

No third-party packages beyond numpy/torch: the formats are small and fixed.
"""

import json
import os
import struct

import numpy as np
import torch

_ST_DTYPES = {
    "F32": (torch.float32, 4),
    "F16": (torch.float16, 2),
    "BF16": (torch.bfloat16, 2),
    "I64": (torch.int64, 8),
    "I32": (torch.int32, 4),
}


def read_safetensors(path):
    """Returns {name: float32 torch tensor} (copies; the file is not kept open)."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: too short for a safetensors file")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > len(raw) - 8:
        raise ValueError(f"{path}: header length {n} past the end of the file")
    header = json.loads(raw[8 : 8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype, size = _ST_DTYPES.get(info["dtype"], (None, 0))
        if dtype is None:
            raise ValueError(f"{path}: tensor '{name}': dtype {info['dtype']} not supported")
        a, b = info["data_offsets"]
        buf = bytearray(raw[base + a : base + b])
        t = torch.frombuffer(buf, dtype=dtype).reshape(info["shape"]) if b > a else torch.zeros(
            info["shape"], dtype=dtype)
        out[name] = t.float() if t.is_floating_point() else t
    return out


def write_safetensors(path, tensors, metadata=None):
    """Writes {name: tensor} as F32 (or the tensor's own F16/BF16 dtype); temp file + rename."""
    header = {}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        if t.dtype == torch.float32:
            dt = "F32"
        elif t.dtype == torch.float16:
            dt = "F16"
        elif t.dtype == torch.bfloat16:
            dt = "BF16"
        else:
            t = t.float()
            dt = "F32"
        data = t.view(torch.uint8).numpy().tobytes() if t.dtype == torch.bfloat16 else t.numpy().tobytes()
        header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    hjson = json.dumps(header, separators=(",", ":")).encode()
    hjson += b" " * ((8 - len(hjson) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


# --- GGUF (read only) ---------------------------------------------------------------------------

_GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q",
                 11: "<q", 12: "<d"}


class GGUF:
    """Metadata (`kv`) and tensors (`tensor(name)` -> float32 numpy array in ggml ne order
    reversed, i.e. the row-major shape [ne_{n-1}, ..., ne_0])."""

    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            self.raw = f.read()
        self.pos = 0
        if self._read(4) != b"GGUF":
            raise ValueError(f"{path}: not a GGUF file")
        (version,) = self._unpack("<I")
        if version not in (2, 3):
            raise ValueError(f"{path}: GGUF version {version} not supported")
        (n_tensors,) = self._unpack("<Q")
        (n_kv,) = self._unpack("<Q")
        self.kv = {}
        for _ in range(n_kv):
            key = self._string()
            (vtype,) = self._unpack("<I")
            self.kv[key] = self._value(vtype)
        self.infos = {}
        for _ in range(n_tensors):
            name = self._string()
            (n_dims,) = self._unpack("<I")
            ne = [self._unpack("<Q")[0] for _ in range(n_dims)]
            (ttype,) = self._unpack("<I")
            (offset,) = self._unpack("<Q")
            self.infos[name] = (ne, ttype, offset)
        align = int(self.kv.get("general.alignment", 32))
        self.data_start = (self.pos + align - 1) // align * align

    def _read(self, n):
        b = self.raw[self.pos : self.pos + n]
        if len(b) != n:
            raise ValueError(f"{self.path}: truncated at byte {self.pos}")
        self.pos += n
        return b

    def _unpack(self, fmt):
        return struct.unpack(fmt, self._read(struct.calcsize(fmt)))

    def _string(self):
        (n,) = self._unpack("<Q")
        return self._read(n).decode("utf-8", errors="surrogateescape")

    def _value(self, vtype):
        if vtype in _GGUF_SCALARS:
            return self._unpack(_GGUF_SCALARS[vtype])[0]
        if vtype == 8:
            return self._string()
        if vtype == 9:
            (etype,) = self._unpack("<I")
            (n,) = self._unpack("<Q")
            if etype in _GGUF_SCALARS and etype != 7:
                fmt = _GGUF_SCALARS[etype]
                size = struct.calcsize(fmt)
                arr = np.frombuffer(self._read(size * n), dtype=np.dtype(fmt))
                return arr.tolist()
            return [self._value(etype) for _ in range(n)]
        raise ValueError(f"{self.path}: unknown GGUF value type {vtype}")

    def names(self):
        return list(self.infos)

    def tensor(self, name):
        if name not in self.infos:
            raise KeyError(f"{self.path}: no tensor '{name}'")
        ne, ttype, offset = self.infos[name]
        count = int(np.prod(ne)) if ne else 1
        start = self.data_start + offset
        if ttype == 0:
            a = np.frombuffer(self.raw, dtype="<f4", count=count, offset=start)
        elif ttype == 1:
            a = np.frombuffer(self.raw, dtype="<f2", count=count, offset=start).astype(np.float32)
        else:
            raise ValueError(f"{self.path}: tensor '{name}': ggml type {ttype} not supported here "
                             "(F32/F16 only)")
        return a.reshape(list(reversed(ne))).astype(np.float32)
