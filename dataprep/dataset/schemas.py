"""The contract between dataset stages: explicit, versioned Arrow schemas for every Parquet table.

A built dataset (``dataprep build``) holds two tables, each sharded into Parquet files:

* ``frames`` (``data/frames/*.parquet``): one row per kept source frame, with its colour image, sketch,
  distance field, component label map and component table.
* ``pairs`` (``data/pairs/*.parquet``): one row per (references -> target) sample mined by the samplers of
  :mod:`dataprep.pairs`, with ground-truth component correspondences and simulated colour hints.

Schemas are written out here, never inferred: inferred schemas drift between shards (datatrove's lesson).
Every field carries its documentation in the Arrow field metadata (``doc``), from which ``docs/dataset.md``
is generated (:func:`markdown`; ``python -m dataprep.dataset.schemas > docs/dataset.md``).

Images are PNG bytes in a ``struct<bytes: binary, path: string>`` column, the layout of a Hugging Face
``datasets`` ``Image`` feature; the schema metadata carries the ``huggingface`` feature description so
``datasets.load_dataset("parquet", data_files=...)`` decodes them to PIL images.

Bump :data:`SCHEMA_VERSION` on any change to a field (name, type or meaning); readers check it. Every earlier
version readers still accept is in :data:`READABLE_SCHEMAS` (its tables' schemas): a column added since is read
as nulls from an older shard (:data:`ADDED_COLUMNS`), so datasets built before load and score unchanged.

Versions: ``1.0`` the first; ``1.1`` adds ``frames.component_parts`` (each region's part from a BasicPBC
``label/`` part map: true correspondences between any two drawings of a shot).
"""

from __future__ import annotations

import json

import pyarrow as pa

SCHEMA_VERSION = "1.1"

#: A PNG-encoded image, shaped like a Hugging Face ``datasets.Image`` feature.
IMAGE = pa.struct([pa.field("bytes", pa.binary()), pa.field("path", pa.string())])

#: One connected component (region enclosed by lines) of a sketch; see :mod:`dataprep.components`.
COMPONENT = pa.struct([
    pa.field("id", pa.int32(), nullable=False, metadata={"doc": "label in the label map (1..N; 0 = line pixels)"}),
    pa.field("area", pa.int32(), nullable=False, metadata={"doc": "pixels in the component"}),
    pa.field("centroid", pa.list_(pa.float32(), 2), nullable=False,
             metadata={"doc": "(row, col) centre of mass in pixels of the stored image"}),
    pa.field("bbox", pa.list_(pa.int32(), 4), nullable=False,
             metadata={"doc": "(min_row, min_col, max_row, max_col), max exclusive (skimage regionprops)"}),
    pa.field("hu", pa.list_(pa.float64(), 7), nullable=False,
             metadata={"doc": "the 7 Hu moment invariants of the component mask (cv2.HuMoments, x = column)"}),
    pa.field("mean_rgb", pa.list_(pa.float32(), 3), nullable=False,
             metadata={"doc": "mean sRGB colour of the component in the colour frame, 0..255"}),
])

#: One ground-truth correspondence: component ``ref_id`` of the reference is ``tgt_id`` of the target.
CORRESPONDENCE = pa.struct([pa.field("ref_id", pa.int32(), nullable=False),
                            pa.field("tgt_id", pa.int32(), nullable=False)])


def _field(name: str, type_: pa.DataType, doc: str, nullable: bool = False) -> pa.Field:
    # Image columns are nullable because datasets only recognises its Image feature on a nullable field; the
    # builder never writes nulls and validate rejects them. Other columns are nullable only where null means
    # something (``nullable=True``, said in their doc).
    return pa.field(name, type_, nullable=nullable or type_ == IMAGE, metadata={"doc": doc})


_FRAMES_FIELDS = [
    _field("frame_key", pa.string(), "unique frame id, '<video_id>/<frame_index:06d>'; pairs refer to it"),
    _field("video_id", pa.string(), "source id: file stem + '-' + first 8 hex digits of the source's sha256"),
    _field("shot_id", pa.int32(), "shot number within the video (0-based, in time order)"),
    _field("shot_start", pa.int32(), "source frame index of the shot's first frame"),
    _field("frame_index", pa.int32(), "0-based frame index in the source video / sorted frame folder"),
    _field("timestamp", pa.float64(), "presentation time of the frame in seconds"),
    _field("split", pa.string(), "'train', 'val' or 'test'; assigned per video or per shot, never per frame"),
    _field("held_group", pa.int32(),
           "frame_index of the first stored frame of this frame's run of held (identical) drawings in the shot"),
    _field("width", pa.int32(), "width of the stored images in pixels"),
    _field("height", pa.int32(), "height of the stored images in pixels"),
    _field("colour", IMAGE, "colour frame, PNG 8-bit sRGB, resized as frames.resize says (default: whole frame, shorter side frames.size)"),
    _field("sketch", IMAGE, "line art, PNG 8-bit grey, 0 = line, 255 = paper"),
    _field("distance_field", IMAGE, "distance field of the sketch, PNG 16-bit grey (see dataprep.field)"),
    _field("components", IMAGE, "component label map, PNG 16-bit grey, 0 = line pixels, 1..N = components"),
    _field("component_table", pa.list_(COMPONENT), "one entry per label 1..N of the label map"),
    _field("component_parts", pa.list_(pa.int32()),
           "since 1.1; null unless the source gave a part map (BasicPBC label/): entry i = the part index most "
           "pixels of component i + 1 carry (-1 = background), equal in every drawing of a shot for the same "
           "part of the character, so two frames' components correspond when their parts are equal",
           nullable=True),
    _field("extractor", pa.string(), "sketch extractor name (dataprep.sketch.extractors.EXTRACTORS)"),
    _field("extractor_params", pa.string(), "extractor parameters, canonical JSON"),
    _field("field", pa.string(), "distance field name (dataprep.field.FIELDS)"),
    _field("seed", pa.int64(), "seed used for this frame's random choices (derived from the build seed)"),
]

_PAIRS_FIELDS = [
    _field("pair_key", pa.string(), "unique id, '<sequence_id>/<target frame_index:06d>'"),
    _field("video_id", pa.string(), "source id (as in frames)"),
    _field("shot_id", pa.int32(), "shot of the references and target (pairs never cross shots)"),
    _field("split", pa.string(), "split of the shot (as in frames)"),
    _field("kind", pa.string(),
           "sampler output kind: 'train-window', 'cmft-test@S' (S = stride), 'shi-seq', 'shi-long@K'"),
    _field("sequence_id", pa.string(), "rows of one mined sequence share it: '<video_id>/<kind>/<first ref index>'"),
    _field("position", pa.int32(), "1-based position of the target within its sequence"),
    _field("reference_keys", pa.list_(pa.string()), "frame_key of each reference, in time order (K >= 1)"),
    _field("target_key", pa.string(), "frame_key of the target frame"),
    _field("interval", pa.int32(), "target frame_index minus the first reference's frame_index (frames)"),
    _field("correspondences", pa.list_(CORRESPONDENCE),
           "ground-truth component matches between the first reference and the target"),
    _field("hints", IMAGE, "simulated colour hints on the target, PNG 8-bit sRGB (0 where no hint)"),
    _field("hint_mask", IMAGE, "hint mask, PNG 8-bit grey, 255 = hint pixel, 0 = none"),
    _field("hint_method", pa.string(), "hint simulator name (dataprep.hints.HINTS) and parameters, canonical JSON"),
    _field("hint_seed", pa.int64(), "seed the hints were drawn with"),
]

#: Columns holding PNG images, per table (decoded by ``dataprep validate`` and by datasets).
IMAGE_COLUMNS = {
    "frames": ["colour", "sketch", "distance_field", "components"],
    "pairs": ["hints", "hint_mask"],
}

#: Expected PNG layout per image column: (channels, bit depth).
IMAGE_FORMATS = {
    "colour": (3, 8), "sketch": (1, 8), "distance_field": (1, 16), "components": (1, 16),
    "hints": (3, 8), "hint_mask": (1, 8),
}


def _schema(name: str, fields: list[pa.Field]) -> pa.Schema:
    images = {f.name for f in fields if f.type == IMAGE}
    metadata = {
        "celbench.table": name,
        "celbench.schema_version": SCHEMA_VERSION,
        # datasets reads this key to turn struct<bytes, path> columns into Image features.
        "huggingface": json.dumps({"info": {"features": _hf_features(fields, images)}}),
    }
    return pa.schema(fields, metadata=metadata)


def _hf_features(fields: list[pa.Field], images: set[str]) -> dict:
    out = {}
    for f in fields:
        if f.name in images:
            out[f.name] = {"_type": "Image"}
        elif pa.types.is_string(f.type):
            out[f.name] = {"dtype": "string", "_type": "Value"}
        elif pa.types.is_integer(f.type) or pa.types.is_floating(f.type):
            out[f.name] = {"dtype": str(f.type), "_type": "Value"}
    # Nested columns (component tables, correspondences) are left for datasets to infer from Arrow.
    return out


FRAMES = _schema("frames", _FRAMES_FIELDS)
PAIRS = _schema("pairs", _PAIRS_FIELDS)
SCHEMAS: dict[str, pa.Schema] = {"frames": FRAMES, "pairs": PAIRS}

#: Columns added after 1.0, per table: version -> names. A shard of an older version lacks them; the reader
#: gives them as nulls (:func:`dataprep.dataset.reader.read_shard`).
ADDED_COLUMNS: dict[str, dict[str, tuple[str, ...]]] = {"frames": {"1.1": ("component_parts",)}, "pairs": {}}


def _older(table: str, version: str) -> pa.Schema:
    """The current schema of ``table`` without the columns added after ``version``."""
    def key(v: str) -> tuple[int, ...]:
        return tuple(int(part) for part in v.split("."))

    added = {name for since, names in ADDED_COLUMNS[table].items() if key(since) > key(version) for name in names}
    schema = SCHEMAS[table]
    for name in added:
        schema = schema.remove(schema.get_field_index(name))
    return schema.with_metadata({**schema.metadata, b"celbench.schema_version": version.encode()})


#: Every schema version readers accept -> its tables' schemas (field names, types, nullability).
READABLE_SCHEMAS: dict[str, dict[str, pa.Schema]] = {
    "1.0": {table: _older(table, "1.0") for table in SCHEMAS},
    SCHEMA_VERSION: SCHEMAS,
}


def image_value(png: bytes | None) -> dict | None:
    """The column value for PNG bytes (``path`` is left empty: the bytes are the image)."""
    return None if png is None else {"bytes": png, "path": None}


def schema_version_of(schema: pa.Schema) -> str | None:
    """The celbench schema version recorded in a Parquet file's schema metadata, or None."""
    meta = schema.metadata or {}
    value = meta.get(b"celbench.schema_version")
    return value.decode() if value is not None else None


def same_fields(a: pa.Schema, b: pa.Schema) -> bool:
    """Field names, types and nullability equal (metadata ignored)."""
    return a.remove_metadata().equals(b.remove_metadata(), check_metadata=False)


def markdown() -> str:
    """``docs/dataset.md``: every table and field with its type and meaning."""
    lines = [
        "# celbench dataset format",
        "",
        f"Schema version **{SCHEMA_VERSION}** (generated from `dataprep/dataset/schemas.py` by "
        "`python -m dataprep.dataset.schemas > docs/dataset.md`; do not edit by hand).",
        "",
        "A dataset directory holds `README.md` (the dataset card), `meta/info.json` (the manifest: schema version, "
        "resolved config and its hash, sources with sha256, counts, per-unit status and the sha256 of every shard, "
        "timings), `data/frames/*.parquet` and `data/pairs/*.parquet`. Image columns are "
        "`struct<bytes: binary, path: string>` holding PNG bytes "
        "(the Hugging Face `datasets` Image layout); zlib level `output.png_compression`, PNG filter and zlib "
        "strategy chosen per column for speed (`dataprep.imaging.PNG_OPTIONS`; lossless, so the decoded pixels "
        "do not depend on them).",
        "",
        "Read a dataset in Python through the one reader, `dataprep.dataset.reader.DatasetReader` (frame index, "
        "lazy PNG decode, a small LRU of shards; no torch), or as PyTorch tensors through "
        "`benchmark.data.PairDataset`, whose sample keys are the canonical ones of `dataprep/dataset/keys.py` "
        "(the same names `bench evaluate` gives models: `target_components`, `hints` as RGB + mask, ...). "
        "`dataprep/dataset/manifest.py` lists the finished shards (`shard_files`).",
        "",
    ]
    lines += [
        "## How rows are made",
        "",
        "- **Whole frames.** By default (`frames.resize: short-side`) a frame is stored whole with its aspect "
        "ratio: shorter side `frames.size` (256), longer side scaled alike and rounded to a multiple of 8 (a 16:9 "
        "source is stored at 456x256), so sketches, distance fields, components, pairs and hints cover the whole "
        "picture; `width`/`height` give each frame's size. Protocols fit stored frames to a model's input "
        "(`fit`: centre crop, pad or tiles; `docs/benchmark.md`), and training cuts them to squares "
        "(`baselines.datasets.SquareCropDataset`). `frames.resize: centre-crop` (the default before whole frames; "
        "a 16:9 frame loses 44% of its area) and `pad` store `frames.width` x `frames.height`, `keep-aspect` fits "
        "the frame inside it. Datasets built with any mode load and evaluate alike.",
        "- **Units and resume.** Work is split into units (runs of whole shots of one source, "
        "`run.frames_per_unit`, default 100 frames); shot detection and units share one set of workers, a "
        "source's units are queued (longest first) as soon as its shots are known, and `meta/info.json` records "
        "each stage's CPU seconds summed over the workers (`timings.stages_cpu_seconds`: `time.process_time` of "
        "the process doing the work, its decoder threads included, so other load on the machine does not inflate "
        "them; `timings.last_run_wall_seconds` is the wall time). A unit's shards are "
        "written under temporary names, renamed when complete, "
        "then `meta/units/<unit>.done.json` is written. `dataprep build --resume` skips units with a marker and "
        "redoes the rest from scratch, so nothing is lost or duplicated. Failed units are listed in the manifest "
        "with their error.",
        "- **Splits** are assigned per shot (or per source, `split.by`) from sha256(split seed, video id, shot "
        "start): deterministic and never dividing a shot; pairs never cross shots. The fractions "
        "(`split.train/val/test`, default 0.8/0.1/0.1) suit training sets; on a handful of shots they may leave "
        "a split empty, so `dataprep build ... --split test` (or `train`, `val`) puts every shot in one split, "
        "e.g. to score models on your own video with `bench evaluate` (whose default split is `test`).",
        "- **Held drawings.** `held_group` groups consecutive frames that show one drawing (anime on twos/threes): "
        "the shot detector's held runs (mean absolute difference of 64-px grey thumbnails <= `held_mad`), or "
        "`frames.held_threshold` when a detector reports none. Samplers drop pairs whose target shares the "
        "reference's group, and the Shi samplers count distinct drawings (`collapse_held`).",
        "- **Given line art.** A line-art folder (`line/` or `sketch/` with `gt/`, `color/` or `colour/` and "
        "optionally BasicPBC's `seg/` segment maps, as subfolders or file-name prefixes; "
        "`dataprep/video/line_art.py`) is one shot of distinct drawings: the artist's line art is stored as "
        "`sketch` (no extractor runs; `extractor` = `given`), the `seg` map as `components` (read, not "
        "recomputed; `extractor_params` says `read` or `extracted`), all three fitted nearest-neighbour so flat "
        "colours stay exact. BasicPBC's `label/` part maps (index = R*65536+G*256+B, transparent = background "
        "-1; one index is one part of the character in every drawing) are read too: each region takes the part "
        "most of its pixels carry, stored per component as `frames.component_parts` (schema 1.1), and the "
        "pairs' `correspondences` are then the true ones (every reference region of the target region's part, "
        "several when the artist split a part) instead of the certain matches derived from colours and shapes. "
        "Because every frame carries its parts, any two drawings of a shot have true correspondences: "
        "`components@2`'s AnimeRun metrics score a matcher's answers against them, and against the "
        "colour-derived ground truth only where a frame has no parts (docs/metrics.md; the record's "
        "`ground_truth_pairs` says how many pairs were scored each way). A line-art file without its colour file (or without its region or "
        "part map while other drawings have one), or files of different sizes, is a one-line error before "
        "anything is written. Use `frames.resize=keep-aspect` with the drawings' size to store them unscaled.",
        "- **Large unseen regions** (CMFT 4.2 drops such test sequences; the paper gives no definition): a target "
        "component is unseen when no reference component's mean colour is within `unseen_colour_tolerance` "
        "(Euclidean, 0..255 sRGB, default 24) of its own; a sequence is dropped when a target's unseen area "
        "exceeds `samplers.cmft-test.max_unseen` (default 0.25) of its component area.",
        "- **Pair kinds** (`dataprep ls samplers`): `train-window` (CMFT 4.1: first and last frame of each "
        "40-frame window, stride 5), `cmft-test@S` (CMFT 4.2: 5 frames at stride S in 1, 5, 10; first is the "
        "reference), `shi-seq` (Shi 4.1: 8 successive drawings, first and last are references), `shi-long@K` "
        "(Shi 4.3: K = 3 equally spaced references per long shot, each target referenced by its segment's ends).",
        "",
    ]
    lines += [
        "## Versions",
        "",
        "`meta/info.json` and every shard's schema metadata (`celbench.schema_version`) carry the version; "
        "`dataprep validate` and the reader accept every version below (a shard must have its manifest's "
        "version), and a column added since a dataset's version reads as nulls, so older datasets load and score "
        "unchanged. `dataprep build --resume` only continues a dataset of the current version.",
        "",
        "| version | change |",
        "|---|---|",
        "| 1.0 | first version |",
        "| 1.1 | `frames.component_parts` (null unless the source gave BasicPBC `label/` part maps): true "
        "correspondences between any two frames of a shot, scored by `components@2` |",
        "",
        "## Reading a dataset",
        "",
        "Every shard holds one split (`data/<table>/<unit>.<split>.<nnn>.parquet`) and every dataset has a card, "
        "`README.md`, whose YAML `configs:` block names each table's files per split. So Hugging Face `datasets` "
        "(`pip install -e '.[hf]'`: datasets and Pillow) loads one table at a time, with image columns as PIL "
        "images. A pair names its frames by key (`reference_keys`, `target_key` are `frame_key`s of `frames`); "
        "join them like this:",
        "",
        "```python",
        "import datasets",
        "",
        'pairs = datasets.load_dataset("DIR", "pairs", split="test")',
        'frames = datasets.load_dataset("DIR", "frames", split="test")',
        'row_of = {key: i for i, key in enumerate(frames["frame_key"])}',
        'cmft = pairs.filter(lambda kind: kind.startswith("cmft-test@"), input_columns="kind")',
        "pair = cmft[0]",
        'reference = frames[row_of[pair["reference_keys"][0]]]["colour"]  # PIL.Image, RGB',
        'target_sketch = frames[row_of[pair["target_key"]]]["sketch"]    # PIL.Image, L (255 = paper)',
        "```",
        "",
        "Without `datasets`, with pandas and pyarrow (images stay PNG bytes; `dataprep.imaging.decode_png` or "
        "`PIL.Image.open(io.BytesIO(...))` decode them):",
        "",
        "```python",
        "import pandas as pd",
        "import pyarrow.dataset as ds",
        "",
        'pairs = ds.dataset("DIR/data/pairs", format="parquet").to_table(filter=ds.field("split") == "test").to_pandas()',
        'frames = ds.dataset("DIR/data/frames", format="parquet").to_table(',
        '    columns=["frame_key", "colour", "sketch"], filter=ds.field("split") == "test").to_pandas()',
        'pairs["reference_key"] = pairs["reference_keys"].str[0]',
        'as_side = lambda side: frames.rename(columns=lambda c: f"{side}_{c.removeprefix(\'frame_\')}")',
        'joined = pairs.merge(as_side("reference"), on="reference_key").merge(as_side("target"), on="target_key")',
        'png_bytes = joined.loc[0, "reference_colour"]["bytes"]',
        "```",
        "",
        "`benchmark.data.PairDataset(DIR, kinds=[...])` gives the same pairs as PyTorch tensors; "
        "`bench evaluate --data DIR` reads the dataset through `benchmark.parquet_source`.",
        "",
    ]
    for name, schema in SCHEMAS.items():
        lines += [f"## `{name}`", "", "| field | type | meaning |", "|---|---|---|"]
        for f in schema:
            doc = (f.metadata or {}).get(b"doc", b"").decode()
            type_ = "image (PNG)" if f.type == IMAGE else str(f.type).replace("|", "\\|")
            lines.append(f"| `{f.name}` | `{type_}` | {doc} |")
            if pa.types.is_list(f.type) and pa.types.is_struct(f.type.value_type):
                for sub in f.type.value_type:
                    subdoc = (sub.metadata or {}).get(b"doc", b"").decode()
                    lines.append(f"| `{f.name}[].{sub.name}` | `{sub.type}` | {subdoc} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(), end="")
