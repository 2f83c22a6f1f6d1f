"""Training's floating-point environment: subnormals flushed inside the block only, and the config switch."""

import platform

import pytest
import torch

from dpp.numerics import flush_denormals
from dpp.train import TrainConfig

TINY = 1e-30  #: TINY * 1e-10 = 1e-40 is a float32 subnormal (normal floats end at 1.2e-38)


def _subnormal_product() -> float:
    return float(torch.tensor([TINY]) * torch.tensor([1e-10]))


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="FTZ/DAZ is an x86 mode")
def test_flush_denormals_flushes_in_the_block_and_restores_after():
    assert _subnormal_product() == pytest.approx(1e-40, rel=1e-3)
    with flush_denormals() as supported:
        assert supported
        assert _subnormal_product() == 0.0
    assert _subnormal_product() == pytest.approx(1e-40, rel=1e-3)


def test_flush_denormals_disabled_changes_nothing():
    with flush_denormals(False) as supported:
        assert not supported
        assert _subnormal_product() == pytest.approx(1e-40, rel=1e-3)


def test_flush_denormals_restores_after_an_error():
    with pytest.raises(RuntimeError, match="inside"):
        with flush_denormals():
            raise RuntimeError("inside")
    assert _subnormal_product() == pytest.approx(1e-40, rel=1e-3)


def test_config_switch_defaults_on_and_round_trips():
    cfg = TrainConfig(model="digits", flush_denormals=False)
    assert TrainConfig().flush_denormals is True
    assert TrainConfig.from_dict({"model": "digits", "flush_denormals": False}) == cfg
