"""The array registry (rtl.archs): one entry per array, every derived constant and lookup, each entry's component,
packer, counter model and workload on its own (exact values)."""

from __future__ import annotations

import numpy as np
import pytest

from dpp.kofn import CSRMatrix, KofNMatrix
from rtl import archs
from rtl.archs import ARRAYS, CSR, CSR_BANKED, DENSE, KOFN, arch_labelled, arch_named, arch_of, banks_for
from rtl.build import make_array
from rtl.layout import ARCH_REGISTERS, DRAIN_CYCLES, DRAIN_CYCLES_BANKED, SEL_ACT, Layout, drain_cycles
from rtl.params import ARCHS, TOP_NAMES, ArrayParams
from rtl.program import activation_words, memory_paths, program_layer

COMMON = {
    "k": 2,
    "n": 4,
    "pes": 3,
    "weight_bits": 4,
    "act_bits": 6,
    "out_bits": 8,
    "max_rows": 12,
    "max_cols": 20,
    "max_batch": 2,
}


def params_of(entry: archs.ArrayArch, **over) -> ArrayParams:
    return ArrayParams(arch=entry.arch, act_banks=4 if entry.banked else 0, **{**COMMON, **over})


def test_one_entry_per_array_and_the_derived_constants() -> None:
    assert archs.LABELS == ("kofn", "dense", "csr", "csr_banked")
    assert ARCHS == archs.ARCHS == ("kofn", "dense", "csr")
    assert TOP_NAMES == {"kofn": "kofn_array", "dense": "dense_array", "csr": "csr_array"}
    assert DRAIN_CYCLES == {"kofn": 5, "dense": 5, "csr": 6} and DRAIN_CYCLES_BANKED == 7
    assert ARCH_REGISTERS == {a.arch: a.registers for a in (KOFN, DENSE, CSR)}
    assert ARCH_REGISTERS["dense"] == (
        "batch",
        "tiles",
        "last_pes",
        "steps",
        "tail_lanes",
        "multiplier",
        "shift",
        "relu",
    )
    assert CSR_BANKED.registers == CSR.registers and CSR_BANKED.top_name == "csr_array"
    assert archs.arch_choices() == "kofn, dense or csr"


def test_a_build_picks_its_entry_by_arch_and_banks() -> None:
    for entry in ARRAYS:
        p = params_of(entry)
        assert arch_of(p) is p.array_arch is Layout(p).array_arch is entry
        assert arch_named(entry.arch, p.act_banks) is entry and arch_labelled(entry.label) is entry
        assert drain_cycles(p) == entry.drain_cycles and p.top_name == entry.top_name
    assert [banks_for(a, 8) for a in ARCHS] == [0, 0, 8]
    assert [archs.has_banked(a) for a in ARCHS] == [False, False, True]
    with pytest.raises(
        ValueError,
        match=r"^act_banks applies to arch='csr' only \(got act_banks=4 for "
        r"arch='dense', expected 0\)$",
    ):
        arch_named("dense", 4)
    with pytest.raises(ValueError, match=r"^arch must be one of kofn, dense, csr \(got arch='systolic'\)$"):
        arch_named("systolic")
    with pytest.raises(ValueError, match=r"^array must be one of kofn, dense, csr, csr_banked \(got 'csr_b'\)$"):
        arch_labelled("csr_b")


def test_which_fields_apply_comes_from_the_entries() -> None:
    for entry in ARRAYS:
        if entry.takes_block:
            assert params_of(entry, block=3).block == 3
        else:
            with pytest.raises(ValueError, match=f"block applies to arch='kofn' only; .* for arch='{entry.arch}'"):
                params_of(entry, block=3)
        if entry.takes_max_nnz:
            assert params_of(entry).max_nnz == 4 * 20 and params_of(entry, max_nnz=7).max_nnz == 7
        else:
            assert params_of(entry).max_nnz == 0
    assert params_of(KOFN, block=3).max_fan_in == 2 * 2 * 3 and params_of(DENSE).max_fan_in == 20


def test_make_array_builds_each_entrys_component_and_components_refuse_the_others() -> None:
    from rtl.csr import CsrArray
    from rtl.csr_banked import BankedCsrArray
    from rtl.lockstep import LockstepArray

    assert [a.component() for a in ARRAYS] == [LockstepArray, LockstepArray, CsrArray, BankedCsrArray]
    for entry in ARRAYS:
        assert type(make_array(params_of(entry))) is entry.component()
    with pytest.raises(
        ValueError,
        match=r"^CsrArray builds arch 'csr' with act_banks = 0 \(got arch='csr', "
        r"act_banks=4\)$",
    ):
        CsrArray(params_of(CSR_BANKED))
    with pytest.raises(ValueError, match=r"^BankedCsrArray builds arch 'csr' with act_banks > 0 \(got arch='csr'\)$"):
        BankedCsrArray(params_of(CSR))
    with pytest.raises(ValueError, match=r"^LockstepArray builds arch 'kofn' or 'dense' \(got arch='csr'\)$"):
        LockstepArray(params_of(CSR))


@pytest.mark.parametrize("entry", ARRAYS, ids=lambda a: a.label)
def test_each_entry_packs_its_layer_into_exactly_its_memories(entry: archs.ArrayArch) -> None:
    params = params_of(entry)
    rng = np.random.default_rng(3)
    w = rng.integers(-7, 8, size=(7, 11))
    W = entry.prune(w, 2, 4, 1, 4)
    x = rng.integers(-32, 32, size=(2, 11))
    prog = program_layer(params, W, x, np.zeros(7, dtype=np.int64), 3, 4, False)
    outs = {f"out{pe}" for pe in range(3)}
    assert set(prog.memories) | outs == set(memory_paths(params))
    assert tuple(prog.registers) == entry.registers
    assert [(a, d) for s, a, d in prog.writes if s == SEL_ACT] == list(enumerate(activation_words(prog)))
    if entry.model_needs:  # csr: one activation per word at address b*cols + c
        assert activation_words(prog) == [int(v) & 0x3F for v in x.ravel()]
        assert prog.row_nnz.tolist() == entry.row_lengths(W).tolist() == W.row_lengths().tolist()
    else:
        assert prog.row_nnz is None and entry.row_lengths(W) is None


class Stats:
    """A hand-made LayerStats: the counter model's formulas without sim's statistics machinery."""

    def row_stats(self) -> tuple[int, int, int]:
        return 5, 9, 17  # span, words, nnz

    def bank_slots(self) -> tuple[int, int]:
        return 33, 21  # cycles summed over slots, bank reads


def test_each_entrys_counter_model_is_its_closed_form() -> None:
    d = {"k": 2, "n": 8, "block": 3, "pes": 4, "value_bits": 24, "index_bits": 6, "rowptr_bits": 7}
    # batch 2, rows 10, cols 50: kofn groups = ceil(50 / 24) = 3, words = 2*10*3, steps = 2*ceil(10/4)*3*3
    assert KOFN.counts(d, 2, 10, 50, Stats()) == (54, 60 * 6, 60 * 24, 60 * 6, 54)
    # dense chunks = ceil(50 / 2) = 25: steps = 2*3*25
    assert DENSE.counts(d, 2, 10, 50, Stats()) == (150, 1000, 2 * 10 * 25 * 24, 0, 150)
    assert CSR.counts(d, 2, 10, 50, Stats()) == (10, 34, 2 * 9 * 24, 2 * (9 * 6 + 10 * 7), 34)
    assert CSR_BANKED.counts(d, 2, 10, 50, Stats()) == (33, 34, 2 * 9 * 24, 2 * (9 * 6 + 10 * 7), 21)


def test_each_entrys_workload_and_storage() -> None:
    rng = np.random.default_rng(0)
    w = rng.integers(-7, 8, size=(6, 16))
    kofn = KOFN.prune(w, 2, 8, 1, 4)
    assert isinstance(kofn, KofNMatrix) and (kofn.k, kofn.n) == (2, 8) and KOFN.density(kofn) == 0.25
    dense = DENSE.prune(w, 2, 8, 1, 4)
    assert np.array_equal(dense, kofn.to_dense()) and DENSE.density(dense) == 1.0
    assert DENSE.storage_bits(dense, 4).total_bits == 6 * 16 * 4 and not DENSE.sparse
    csr = CSR.prune(w, 2, 8, 1, 4)
    assert isinstance(csr, CSRMatrix) and csr.nnz == 24 and CSR_BANKED.prune(w, 2, 8, 1, 4).nnz == 24
    assert CSR.storage_bits(csr, 4).total_bits == csr.storage_bits().total_bits
    assert [a.trained_method for a in ARRAYS] == ["dpp", "dense", "unstructured", "unstructured"]
