import pytest

from dataprep.errors import CelbenchError
from dataprep.registry import Registry


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
