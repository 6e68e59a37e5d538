import numpy as np

from dataprep.visual import colorize_labels, image_grid


def test_grid_margin_fits_long_row_titles_and_places_every_image():
    black = np.zeros((10, 20, 3), np.uint8)
    short = image_grid([[black, black]], row_titles=["a"], cell=40)
    long = image_grid([[black, black]], row_titles=["shi-long@3 000012->000040"], cell=40)
    assert long.shape[0] == short.shape[0] and long.shape[1] > short.shape[1] + 100  # margin grew, no cut
    # each 20x10 image fills the middle band of its 40 px cell
    right = long[:, -44:]
    assert (right.min(axis=-1) == 0).sum() == 40 * 20


def test_label_colours_are_stable_and_lines_black():
    labels = np.array([[0, 1], [2, 1]], np.uint16)
    rgb = colorize_labels(labels)
    assert rgb[0, 0].tolist() == [0, 0, 0] and np.array_equal(rgb[0, 1], rgb[1, 1])
    assert not np.array_equal(rgb[0, 1], rgb[1, 0])
