"""``StrEnum``: enum.StrEnum, which Python 3.10 (still supported) lacks.
A member is its value wherever a str goes: JSON, f-strings, comparisons
with the strings older versions wrote."""

import enum

try:
    StrEnum = enum.StrEnum
except AttributeError:   # Python 3.10
    class StrEnum(str, enum.Enum):
        def __str__(self) -> str:
            return self.value

        def __format__(self, spec: str) -> str:
            return self.value.__format__(spec)
