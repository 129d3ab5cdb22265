"""``format_ms`` (table-driven for speed) writes exactly what ``strftime`` would."""

from __future__ import annotations

import random
import time

from dstrail.domain.timestamps import DAY_MS, format_ms, parse_iso


def reference(ms: int) -> str:
    """The plain definition: ``strftime`` of the whole seconds, then the milliseconds."""
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def test_format_ms_matches_strftime_everywhere() -> None:
    rng = random.Random(5)
    edges = [0, 1, -1, 999, 1000, -999, -1000, DAY_MS - 1, DAY_MS, -DAY_MS, 951_782_400_000]
    samples = edges + [rng.randrange(-(10**12), 4 * 10**12) for _ in range(20_000)]
    for ms in samples:
        assert format_ms(ms) == reference(ms), ms


def test_format_ms_examples_and_round_trip() -> None:
    assert format_ms(1_692_826_821_669) == "2023-08-23T21:40:21.669Z"
    assert format_ms(0) == "1970-01-01T00:00:00.000Z"
    assert format_ms(-1) == "1969-12-31T23:59:59.999Z"
    assert format_ms(951_868_799_999) == "2000-02-29T23:59:59.999Z"
    for ms in (0, 1_692_826_821_669, 4_102_444_800_000):
        assert parse_iso(format_ms(ms), field="t") == ms
