"""Every constant of the per-access energy model, with its source: the one place to change them.

Technology: 45 nm CMOS at 0.9 V, the node of the published table we anchor to. All energies in picojoules.

Sources
-------
[H14] M. Horowitz, "Computing's energy problem (and what we can do about it)", IEEE ISSCC 2014, pp. 10-14,
      doi:10.1109/ISSCC.2014.6757323. Figure "Rough energy costs for various operations in 45 nm 0.9 V":
      integer add 8 bit 0.03 pJ, 32 bit 0.1 pJ; integer multiply 8 bit 0.2 pJ, 32 bit 3.1 pJ;
      cache read of a 64-bit word: 8 KB 10 pJ, 32 KB 20 pJ, 1 MB 100 pJ; DRAM 1.3-2.6 nJ per 64 bits.
      (The same numbers are reproduced e.g. in stillwater-sc/universal ``generic_45nm.hpp`` and
      stillwater-sc/esim ``energysim/database/energy.py``.)

Scaling rules (ours, stated so they can be checked)
---------------------------------------------------
* Multiply: an array multiplier's switched capacitance grows with its partial products, so
  E_mul(w, a) = MUL_8x8_PJ * (w * a) / 64. Check against [H14]: 32x32 gives 0.2 * 16 = 3.2 pJ (published 3.1).
* Add: a ripple/prefix adder grows with its width, so E_add(b) = ADD_8_PJ * b / 8. Check: 32 bit gives
  0.12 pJ (published 0.1).
* SRAM read (or write) per bit, by memory size: log-log interpolation through the three [H14] cache points
  divided by 64 bits; below 8 KB the 8-32 KB slope (~ sqrt(size), the bit-line/word-line length law) is
  extrapolated down to SRAM_MIN_BYTES, below which a memory costs as much per bit as one of that size;
  above 1 MB the 32 KB-1 MB slope is extrapolated.
* Flip-flop (register) write per bit: ASSUMPTION, not from [H14]: a D flip-flop and a full-adder cell have
  comparable transistor counts and switched capacitance, so one register bit written costs about one bit of
  the [H14] 8-bit add (0.03 / 8 pJ). A lane that idles for a cycle still clocks its registers without data
  toggling: ASSUMPTION, half of a write per register bit.
"""

from __future__ import annotations

TECHNOLOGY = "45 nm CMOS, 0.9 V (Horowitz, ISSCC 2014)"

# [H14] arithmetic
ADD_8_PJ = 0.03
ADD_32_PJ = 0.1  # used only as a check of the linear rule
MUL_8x8_PJ = 0.2
MUL_32x32_PJ = 3.1  # used only as a check of the quadratic rule

# [H14] SRAM / cache: (size in bytes, pJ per 64-bit read)
SRAM_POINTS_BYTES_PJ_PER_64B = ((8 * 1024, 10.0), (32 * 1024, 20.0), (1024 * 1024, 100.0))
SRAM_ACCESS_WORD_BITS = 64
SRAM_MIN_BYTES = 1024  # ASSUMPTION: below 1 KB, periphery dominates; per-bit cost stops falling
SRAM_WRITE_OVER_READ = 1.0  # ASSUMPTION: [H14] lists reads only; writes taken equal

# ASSUMPTIONS (see the module docstring)
REG_WRITE_PJ_PER_BIT = ADD_8_PJ / 8
REG_IDLE_CLOCK_FRACTION = 0.5

SOURCES = {
    "H14": "M. Horowitz, 'Computing's energy problem (and what we can do about it)', ISSCC 2014, "
    "doi:10.1109/ISSCC.2014.6757323",
}
