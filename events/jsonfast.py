"""JSON decoding for the read path: orjson when installed, else the standard library.

Only decoding. Encoding for hashes is `canonical_json` (the standard library); the append
path's specialised loaders use orjson only where it writes the very same text (see
`specialise.SENTINELS` and `ORJSON_FLOAT_FLOOR`).
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
