from __future__ import annotations

from typing import Sequence

import pytest

from dataprep.errors import CelbenchError
from dataprep.registry import Registry, check_params, parameter_defaults


def test_register_create_and_suggest():
    reg = Registry("detector")

    @reg.register("histogram-mse")
    class Hist:
        def __init__(self, threshold=200.0):
            self.threshold = threshold

    assert reg.names() == ["histogram-mse"]
    assert reg.create("histogram-mse", threshold=3).threshold == 3
    with pytest.raises(CelbenchError, match="did you mean 'histogram-mse'"):
        reg.get("histogram-mes")
    with pytest.raises(ValueError):
        reg.register("histogram-mse")(type("Other", (), {}))


class Toy:
    """A component as a registry holds it: typed keyword parameters, one without a default."""

    def __init__(self, image, size: int, scale: float = 1.0, strides: Sequence[int] = (1, 5), name: str | None = None,
                 flag: bool = False):
        pass


@pytest.mark.parametrize("params, message", [
    ({"size": 3, "scael": 2.0}, r"unknown config key part\.params\.scael: toy takes no parameter 'scael'; "
                                r"did you mean 'scale'\? \(known: size, scale, strides, name, flag\)"),
    ({"size": 3.5}, r"config key part\.params\.size: expected int, got float 3\.5"),
    ({"size": True}, r"part\.params\.size: expected int, got bool"),
    ({"size": 3, "scale": "big"}, r"part\.params\.scale: expected float, got str 'big'"),
    ({"size": 3, "strides": [1, "x"]}, r"part\.params\.strides: expected Sequence\[int\]"),
    ({"size": 3, "strides": "15"}, r"part\.params\.strides: expected Sequence\[int\]"),
    ({"size": 3, "name": 5}, r"part\.params\.name: expected str \| None"),
    ({"size": 3, "flag": 1}, r"part\.params\.flag: expected bool, got int"),
    ({}, r"config key part\.params: toy needs size"),
])
def test_check_params_judges_names_types_and_required_parameters(params, message):
    with pytest.raises(CelbenchError, match=message):
        check_params(Toy, params, "part.params", "toy", given=("image",))


def test_check_params_accepts_what_the_signature_accepts():
    check_params(Toy, {"size": 3, "scale": 2, "strides": [2, 3], "name": None, "flag": True}, "p", "toy",
                 given=("image",))  # an int is a float; a YAML list is a sequence
    check_params(lambda **kwargs: None, {"anything": 1}, "p", "open")  # **kwargs: the library checks them
    check_params(Toy, {"size": 1, "extra": 0.5}, "p", "toy", given=("image",), extra={"extra": float})
    assert parameter_defaults(Toy) == {"scale": 1.0, "strides": [1, 5], "name": None, "flag": False}
    reg = Registry("toy")
    reg.register("toy")(Toy)
    with pytest.raises(CelbenchError, match=r"config key part\.name: unknown toy 'tyo'; did you mean 'toy'"):
        reg.check("tyo", {}, "part.name", "part.params")
    assert reg.check("toy", {"size": 2}, "part.name", "part.params", given=("image",)) is Toy
