"""Whole numbers read from text someone else wrote (Redis keys, worker ids,
pid files, URLs, command lines).

``str.isdigit()`` is true of "²", "٣" and other digits that ``int()``
refuses or reads differently, so a check with it lets a stray character
through to a ValueError far from where it came in. These accept ASCII
digits only.
"""


def is_whole_number(text) -> bool:
    """Whether ``text`` (str or bytes) is one or more ASCII digits."""
    return bool(text) and text.isascii() and text.isdigit()


def whole_number(text) -> int | None:
    """``text`` as an int when it is ASCII digits only, else None."""
    return int(text) if is_whole_number(text) else None
