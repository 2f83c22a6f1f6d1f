"""Let the sim tests import their helper designs (``toy_array``) by module name."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
