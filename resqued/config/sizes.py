"""Memory sizes as operators write them ("300MB", "1.5GiB", "512M") and back.

Units are case-insensitive:

- ``KB`` ``MB`` ``GB`` ``TB`` are decimal (10^3 ...), as the SI and disk vendors use them;
- ``KiB`` ``MiB`` ``GiB`` ``TiB`` (and Kubernetes' ``Ki`` ``Mi`` ``Gi`` ``Ti``) are binary (2^10 ...);
- a bare ``K`` ``M`` ``G`` ``T`` is binary too, as in ``java -Xmx512m``,
  ``docker -m 2g`` or nginx;
- ``B`` or no unit is bytes, and then the number must be whole.
"""

import re
from fractions import Fraction

KIB, MIB, GIB, TIB = 1 << 10, 1 << 20, 1 << 30, 1 << 40

UNITS = {
    "": 1, "b": 1,
    "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
    "kib": KIB, "mib": MIB, "gib": GIB, "tib": TIB,
    "ki": KIB, "mi": MIB, "gi": GIB, "ti": TIB,
    "k": KIB, "m": MIB, "g": GIB, "t": TIB,
}
# A size must fit a signed 64-bit integer, as the kernel's RSS counters do.
MAX_SIZE = (1 << 63) - 1

_SIZE = re.compile(r"([+-]?)([0-9]{1,20}(?:\.[0-9]{1,20})?)\s*([a-z]*)", re.ASCII | re.IGNORECASE)
_EXAMPLES = "a size such as 300MB, 1.5GiB, 512M or a number of bytes"

# Largest unit first, and decimal before binary at a similar scale, so that
# 300000000 reads "300MB" and 1610612736 reads "1.5GiB".
_SHOWN = [("TB", 10**12), ("TiB", TIB), ("GB", 10**9), ("GiB", GIB),
          ("MB", 10**6), ("MiB", MIB), ("KB", 10**3), ("KiB", KIB)]


def parse_size(value) -> int:
    """Bytes from an int (bytes) or a string with an optional unit; ValueError if invalid."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"expected {_EXAMPLES}, got {type(value).__name__} {value!r}")
    if isinstance(value, int):
        sign, number, unit = ("-" if value < 0 else ""), Fraction(abs(value)), ""
    else:
        match = _SIZE.fullmatch(value.strip())
        if not match:
            raise ValueError(f"invalid size {value!r}: expected {_EXAMPLES}")
        sign, digits, unit = match.groups()
        if unit.lower() not in UNITS:
            raise ValueError(f"invalid size {value!r}: unknown unit {unit!r} "
                             "(use B, KB, MB, GB, TB, KiB, MiB, GiB, TiB or K, M, G, T)")
        if "." in digits and UNITS[unit.lower()] == 1:
            raise ValueError(f"invalid size {value!r}: a number of bytes must be whole")
        number = Fraction(digits)
    size = int(number * UNITS[unit.lower()])
    if sign == "-":
        raise ValueError(f"invalid size {value!r}: must be positive")
    if size <= 0:
        raise ValueError(f"invalid size {value!r}: must be at least 1 byte")
    if size > MAX_SIZE:
        raise ValueError(f"invalid size {value!r}: too large (at most {MAX_SIZE} bytes)")
    return size


def format_size(size: int) -> str:
    """The shortest exact spelling that parse_size reads back: "300MB", "1.5GiB", "1000B"."""
    for unit, factor in _SHOWN:
        if size >= factor and (size * 10) % factor == 0:
            tenths = size * 10 // factor
            whole = str(tenths // 10) + (f".{tenths % 10}" if tenths % 10 else "")
            return f"{whole}{unit}"
    return f"{size}B"


def human_size(size: int) -> str:
    """format_size, plus an approximation when the exact spelling is a raw byte count."""
    exact = format_size(size)
    if exact.endswith("B") and exact[:-1].isdigit() and size >= KIB:
        for unit, factor in (("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
            if size >= factor:
                return f"{exact} (~{size / factor:.1f}{unit})"
    return exact
