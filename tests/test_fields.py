"""Distance fields against a brute-force Euclidean distance, and their lossless uint16 storage."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from dataprep.cli import main
from dataprep.errors import CelbenchError
from dataprep.field import DEFAULT_TRUNCATION, FIELDS, decode_field, encode_field


def brute_force_distance(line_mask):
    lines = np.argwhere(line_mask)
    rows, cols = np.indices(line_mask.shape)
    d = np.sqrt((rows[..., None] - lines[:, 0]) ** 2 + (cols[..., None] - lines[:, 1]) ** 2)
    return d.min(axis=-1)


@pytest.mark.parametrize("seed", range(5))
def test_euclidean_field_matches_brute_force_distance(seed):
    rng = np.random.default_rng(seed)
    sketch = np.where(rng.random((23, 31)) < 0.03, 0, 255).astype(np.uint8)
    sketch[rng.integers(23), rng.integers(31)] = 0  # at least one line pixel
    truncation = 6.0
    field = FIELDS.create("euclidean", truncation=truncation)(sketch)
    expected = np.minimum(brute_force_distance(sketch < 128), truncation) / truncation
    assert field.dtype == np.float32 and field.shape == sketch.shape
    np.testing.assert_allclose(field, expected, atol=1e-6)


def test_field_is_zero_on_lines_one_beyond_truncation_and_one_without_lines():
    sketch = np.full((5, 80), 255, np.uint8)
    sketch[:, 0] = 0
    field = FIELDS.create("euclidean")(sketch)
    assert (field[:, 0] == 0).all()
    np.testing.assert_allclose(field[0, 16], 16 / DEFAULT_TRUNCATION)
    assert (field[:, int(DEFAULT_TRUNCATION):] == 1).all()
    assert (FIELDS.create("euclidean")(np.full((4, 4), 255, np.uint8)) == 1).all()


def test_line_threshold_decides_which_pixels_are_lines():
    sketch = np.array([[100, 255, 255, 255]], np.uint8)
    assert FIELDS.create("euclidean", truncation=3, line_threshold=128)(sketch)[0, 0] == 0
    assert (FIELDS.create("euclidean", truncation=3, line_threshold=50)(sketch) == 1).all()


def test_encoding_is_exactly_invertible_to_the_stated_precision():
    rng = np.random.default_rng(0)
    field = rng.random((64, 64)).astype(np.float32)
    field[0, :3] = [0.0, 1.0, 0.5]
    encoded = encode_field(field)
    assert encoded.dtype == np.uint16 and encoded[0, 0] == 0 and encoded[0, 1] == 65535
    decoded = decode_field(encoded)
    assert decoded.dtype == np.float32
    assert np.abs(decoded - field).max() <= 0.5 / 65535 + 1e-7
    np.testing.assert_array_equal(encode_field(decoded), encoded)
    # survives a 16-bit PNG round trip bit for bit
    ok, png = cv2.imencode(".png", encoded)
    assert ok
    np.testing.assert_array_equal(cv2.imdecode(png, cv2.IMREAD_UNCHANGED), encoded)


def test_bad_inputs_are_user_errors():
    with pytest.raises(CelbenchError, match="truncation"):
        FIELDS.create("euclidean", truncation=0)
    with pytest.raises(CelbenchError, match="uint8 sketch"):
        FIELDS.create("euclidean")(np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(CelbenchError, match=r"\[0, 1\]"):
        encode_field(np.array([1.5]))
    with pytest.raises(CelbenchError, match="uint16"):
        decode_field(np.zeros(3, np.uint8))
    with pytest.raises(CelbenchError, match="did you mean 'euclidean'"):
        FIELDS.create("euclidian")


def test_ls_fields(capsys):
    assert main(["ls", "fields"]) == 0
    assert capsys.readouterr().out.startswith("euclidean\t")


def test_fast_transform_and_lookup_equal_scipy_exactly():
    # euclidean_distance (cv2 + exact recovery of the squared distance) and EuclideanField.encoded (a lookup
    # table) replaced scipy's distance_transform_edt and encode_field(field(...)): the values must be identical.
    from scipy import ndimage

    from dataprep.field import euclidean_distance

    rng = np.random.default_rng(11)
    for shape, density in (((64, 80), 0.01), ((256, 256), 0.002), ((300, 17), 0.3), ((1, 9), 0.2), ((900, 1100), 1e-5)):
        sketch = np.where(rng.random(shape) < density, 0, 255).astype(np.uint8)
        sketch.flat[rng.integers(sketch.size)] = 0
        paper = sketch >= 128
        np.testing.assert_array_equal(euclidean_distance(paper), ndimage.distance_transform_edt(paper))
        for truncation in (32.0, 5.5):
            euclidean = FIELDS.create("euclidean", truncation=truncation)
            expected = (np.minimum(ndimage.distance_transform_edt(paper), truncation) / truncation).astype(np.float32)
            np.testing.assert_array_equal(euclidean(sketch), expected)
            np.testing.assert_array_equal(euclidean.encoded(sketch), encode_field(expected))
    blank = np.full((5, 6), 255, np.uint8)
    assert (FIELDS.create("euclidean").encoded(blank) == 65535).all()
    no_false = np.ones((20, 20), bool)  # nothing to measure to: OpenCV has no answer, scipy's is kept
    np.testing.assert_array_equal(euclidean_distance(no_false), ndimage.distance_transform_edt(no_false))
