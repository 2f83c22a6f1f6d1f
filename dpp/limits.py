"""Limits of the generated hardware, needed from training to RTL, so they live once at the bottom layer.

``rtl.params`` builds arrays within them; ``dpp train`` / ``dpp export`` / ``dpp pack`` refuse a network the
arrays could never run (for example ``n = 128``) before any work, instead of every hardware command refusing it
later. The ``--help`` of those commands quotes them.
"""

from __future__ import annotations

MAX_N = 64  #: slots per k-of-n group: the n:1 index mux in front of each multiplier
MAX_BLOCK = 64  #: columns per k-of-n slot (kernel granularity: kh*kw)
MAX_PES = 64  #: processing elements per array
MAX_ACC_BITS = 64  #: accumulator width
MAX_ACT_BANKS = 1024  #: banks of the banked CSR array's activation memory
WEIGHT_BITS_RANGE = (2, 16)  #: signed bits per stored weight the arrays accept
MAX_MEMORY_DEPTH = 1 << 20  #: most rows / columns / batch one build is sized for
