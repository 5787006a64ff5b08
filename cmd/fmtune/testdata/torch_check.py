#!/usr/bin/python3
"""PyTorch's side of fmtune's model-file interoperability test (cmd/fmtune/model_test.go).

  torch_check.py DATA_DIR REFERENCE_DIR MODEL.safetensors...

Reads each fmtune model file with nothing but json and numpy.frombuffer (no safetensors
package), copies its tensors into the reference architecture of torch_train.py (from
REFERENCE_DIR when it holds one, else the copy of its build_model below), evaluates it on
the Fashion-MNIST test set and prints one JSON line per file: file, arch, test_acc,
test_loss, reference.
"""

import gzip
import json
import os
import struct
import sys

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import torch  # noqa: E402
from torch import nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

# fmtune's layer names, in the order of the reference's Linear and Conv2d modules.
LAYERS = {
    "mlp": ["dense1", "out"],
    "deep": ["dense1", "dense2", "dense3", "out"],
    "cnn": ["conv1", "conv2", "dense1", "out"],
    "cnn-dropout": ["conv1", "conv2", "dense1", "out"],
}


def read_safetensors(path):
    with open(path, "rb") as f:
        b = f.read()
    (n,) = struct.unpack("<Q", b[:8])
    header = json.loads(b[8:8 + n])
    meta = header.pop("__metadata__", {})
    body = b[8 + n:]
    tensors = {}
    for name, e in header.items():
        if e["dtype"] != "F32":
            raise SystemExit(f"{name}: dtype {e['dtype']}")
        start, end = e["data_offsets"]
        tensors[name] = np.frombuffer(body[start:end], dtype="<f4").reshape(e["shape"])
    return meta, tensors


def build_model_copy(arch):
    """torch_train.py's build_model (the modules only; the weights come from the file)."""
    if arch == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.Sigmoid(), nn.Linear(32, 10))
    if arch == "deep":
        return nn.Sequential(
            nn.Flatten(),
            nn.Linear(784, 64), nn.ReLU(),
            nn.Linear(64, 32), nn.ReLU(),
            nn.Linear(32, 32), nn.ReLU(),
            nn.Linear(32, 10))
    d = arch == "cnn-dropout"

    def drop(p):
        return [nn.Dropout(p)] if d else []

    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), *drop(0.25),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2), *drop(0.25),
        nn.Flatten(),
        nn.Linear(64 * 5 * 5, 128), nn.ReLU(), *drop(0.5),
        nn.Linear(128, 10))


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def find(data_dir, name):
    for p in (os.path.join(data_dir, name + ".gz"), os.path.join(data_dir, name)):
        if os.path.exists(p):
            return p
    raise SystemExit(f"{name} not in {data_dir}")


def load(path, ref):
    """The model in path, in the reference architecture."""
    meta, tensors = read_safetensors(path)
    arch = meta["arch"]
    model = ref.build_model(arch) if ref else build_model_copy(arch)
    layers = [m for m in model if isinstance(m, (nn.Linear, nn.Conv2d))]
    names = LAYERS[arch]
    if len(layers) != len(names) or len(tensors) != 2 * len(names):
        raise SystemExit(f"{path}: {len(tensors)} tensors for {len(layers)} layers")
    with torch.no_grad():
        for module, name in zip(layers, names):
            for part in ("weight", "bias"):
                t = torch.from_numpy(tensors[f"{name}.{part}"].copy())
                p = getattr(module, part)
                if tuple(t.shape) != tuple(p.shape):
                    raise SystemExit(f"{path}: {name}.{part}: shape {tuple(t.shape)}, module wants {tuple(p.shape)}")
                p.copy_(t)
    model.eval()
    return arch, model


def main():
    data_dir, ref_dir, paths = sys.argv[1], sys.argv[2], sys.argv[3:]
    torch.set_num_threads(1)
    reference, ref = "copy of torch_train.build_model", None
    if ref_dir and os.path.exists(os.path.join(ref_dir, "torch_train.py")):
        sys.path.insert(0, ref_dir)
        import torch_train as ref  # noqa: E402
        reference = os.path.join(ref_dir, "torch_train.py")
    x = read_idx(find(data_dir, "t10k-images-idx3-ubyte"))
    y = read_idx(find(data_dir, "t10k-labels-idx1-ubyte"))
    x = torch.from_numpy(x.astype(np.float32) / 255.0).unsqueeze(1)
    y = torch.from_numpy(y.astype(np.int64))
    n = x.shape[0]
    for path in paths:
        arch, model = load(path, ref)
        loss_sum, correct = 0.0, 0
        with torch.no_grad():
            for i in range(0, n, 1000):
                out = model(x[i:i + 1000])
                loss_sum += F.cross_entropy(out, y[i:i + 1000], reduction="sum").item()
                correct += (out.argmax(1) == y[i:i + 1000]).sum().item()
        print(json.dumps({"file": path, "arch": arch, "test_acc": correct / n, "test_loss": loss_sum / n,
                          "reference": reference}), flush=True)


if __name__ == "__main__":
    main()
