"""Minimal safetensors reader/writer (torch only), so the tools run without the
`safetensors` package. Format: u64 little-endian header size, JSON header
{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}, then the
raw little-endian tensor bytes. train.py cross-checks files written here against the
`safetensors` library when it is installed."""

import json
import struct

import torch

kDtypeNames = {
    torch.float32: "F32",
    torch.bfloat16: "BF16",
    torch.float16: "F16",
    torch.int64: "I64",
    torch.int32: "I32",
}
kDtypesByName = {name: dtype for dtype, name in kDtypeNames.items()}


def write_safetensors(path, tensors, metadata=None):
    """Writes `tensors` ({name: tensor}) sorted by name, contiguous, CPU."""
    header = {}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        tensor = tensors[name].detach().to("cpu").contiguous()
        if tensor.dtype not in kDtypeNames:
            raise ValueError(f"write_safetensors: {name}: unsupported dtype {tensor.dtype}")
        # Reinterpret as bytes through a same-size integer view (works for bf16 too).
        data = tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b""
        header[name] = {"dtype": kDtypeNames[tensor.dtype], "shape": list(tensor.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = dict(metadata or {"format": "pt"})
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    encoded += b" " * ((8 - len(encoded) % 8) % 8)  # keep the data 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)))
        f.write(encoded)
        for blob in blobs:
            f.write(blob)


def read_safetensors(path):
    """Returns ({name: tensor}, metadata)."""
    with open(path, "rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size).decode("utf-8"))
        data = f.read()
    metadata = header.pop("__metadata__", {})
    tensors = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        dtype = kDtypesByName.get(info["dtype"])
        if dtype is None:
            raise ValueError(f"read_safetensors: {path}: {name}: unsupported dtype {info['dtype']}")
        raw = bytearray(data[begin:end])
        flat = torch.frombuffer(raw, dtype=torch.uint8) if raw else torch.empty(0, dtype=torch.uint8)
        tensors[name] = flat.view(dtype).reshape(info["shape"]).clone()
    return tensors, metadata
