"""Energy model on hand-computed counters, and its anchoring to the published constants."""

from __future__ import annotations

import pytest

from analysis import energy
from analysis import energy_constants as C

KB = 8 * 1024  # bits in a kilobyte


def counters(**over):
    base = dict(
        cycles=50,
        mac_ops=100,
        lane_idle_cycles=10,
        weight_bits_read=800,
        index_bits_read=200,
        act_bits_read=800,
        out_bits_written=64,
    )
    base.update(over)
    return base


def test_hand_computed_layer():
    mem = {"weight": 8 * KB, "index": 8 * KB, "act": 32 * KB, "out": 1024 * KB}
    e = energy.layer_energy(counters(), weight_bits=8, act_bits=8, acc_bits=24, memory_bits=mem, batch=2)
    # by hand: mult 0.2, add 0.03*24/8=0.09, acc reg 24*0.03/8=0.09 per MAC; idle 0.5*40*0.03/8=0.075;
    # SRAM per bit: 8 KB 10/64, 32 KB 20/64, 1 MB 100/64
    want = {
        "mac_mult": 20.0,
        "mac_add": 9.0,
        "acc_register": 9.0,
        "idle_lanes": 0.75,
        "weight_read": 125.0,
        "index_read": 31.25,
        "act_read": 250.0,
        "out_write": 100.0,
    }
    assert e.components_pj == pytest.approx(want)
    assert e.total_pj == pytest.approx(545.0)
    assert e.per_inference_pj == pytest.approx(272.5)
    cols = e.columns()
    assert cols["energy_total_pj"] == pytest.approx(545.0) and cols["energy_act_read_pj"] == pytest.approx(250.0)


def test_zero_counters_cost_nothing():
    zero = {k: 0 for k in energy.COUNTERS}
    e = energy.layer_energy(zero, weight_bits=4, act_bits=4, acc_bits=12, memory_bits={m: 0 for m in energy.MEMORIES})
    assert e.total_pj == 0.0


def test_scaling_rules_match_published_points():
    assert energy.mult_energy_pj(8, 8) == pytest.approx(C.MUL_8x8_PJ)
    assert energy.mult_energy_pj(32, 32) == pytest.approx(C.MUL_32x32_PJ, rel=0.05)
    assert energy.mult_energy_pj(4, 8) == pytest.approx(C.MUL_8x8_PJ / 2)
    assert energy.add_energy_pj(32) == pytest.approx(C.ADD_32_PJ, rel=0.25)
    for size_bytes, pj in C.SRAM_POINTS_BYTES_PJ_PER_64B:
        assert energy.sram_read_pj_per_bit(size_bytes * 8) == pytest.approx(pj / 64)


def test_sram_energy_grows_with_size_and_floors():
    sizes = [0, 512 * 8, 1024 * 8, 4 * KB, 16 * KB, 256 * KB, 4096 * KB]
    e = [energy.sram_read_pj_per_bit(s) for s in sizes]
    assert e[0] == e[1] == e[2]  # below SRAM_MIN_BYTES: flat
    assert all(a < b for a, b in zip(e[2:], e[3:]))
    assert 10 / 64 < energy.sram_read_pj_per_bit(16 * KB) < 20 / 64


def test_network_sum_and_errors():
    mem = {m: 8 * KB for m in energy.MEMORIES}
    a = energy.layer_energy(counters(), weight_bits=8, act_bits=8, acc_bits=24, memory_bits=mem, batch=2)
    b = energy.layer_energy(counters(mac_ops=0), weight_bits=8, act_bits=8, acc_bits=24, memory_bits=mem, batch=2)
    net = energy.network_energy([a, b])
    assert net.total_pj == pytest.approx(a.total_pj + b.total_pj) and net.cycles == 100
    with pytest.raises(ValueError, match="same batch"):
        energy.network_energy(
            [a, energy.layer_energy(counters(), weight_bits=8, act_bits=8, acc_bits=24, memory_bits=mem, batch=1)]
        )
    with pytest.raises(ValueError, match=r"missing \['mac_ops'\]"):
        bad = counters()
        del bad["mac_ops"]
        energy.layer_energy(bad, weight_bits=8, act_bits=8, acc_bits=24, memory_bits=mem)
    with pytest.raises(ValueError, match="mac_ops must be >= 0"):
        energy.layer_energy(counters(mac_ops=-1), weight_bits=8, act_bits=8, acc_bits=24, memory_bits=mem)
    with pytest.raises(ValueError, match="memory_bits must have keys"):
        energy.layer_energy(counters(), weight_bits=8, act_bits=8, acc_bits=24, memory_bits={"weight": 1})
