"""JSON decoding for the read path: orjson when installed, else the standard library.

Only decoding: encoding for hashes always uses the stdlib canonical form (orjson renders
some floats differently, which would change hashes).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

loads: Callable[[str | bytes], Any]
try:
    import orjson

    loads = orjson.loads
except ImportError:  # pragma: no cover - exercised where orjson is absent
    loads = json.loads
