"""A TensorFlow Serving request's JSON, read in work and memory bounded before anything is built.

json.loads builds whatever a body describes (the 6.6 million empty lists of 20 MB: 540 MiB; a
500,000-character string among numbers, widened by numpy: 1.9 GiB) and holds the GIL throughout
(0.4 s for 1,000 digits), stalling every other request. So the body's brackets, braces and quotes
are found first, with numpy, which lets go of the GIL, and bounded: how many, how deep, how long
a string. Each innermost list, a list of numbers, is set aside; what is left (the request's keys
and its lists of lists, a few hundred KB at most) is parsed with json.loads, and each list of
numbers is parsed only when the request's shape asks for it, one at a time.
"""

import json
from dataclasses import dataclass

import numpy as np
from fastapi import HTTPException

MAX_DEPTH = 5  # {"inputs": {"pixels": [[[...]]]}}: two objects, the batch, an image, its rows
MAX_STRING = 64  # characters of a key or a signature's name: the only strings a request holds
MAX_LIST_BYTES = 65_536  # one list of numbers: 784 pixels, however spaced and written
# Per instance: brackets, braces and quotes (28 rows and their list, a named input's object and
# name: 62), and bytes of JSON around its lists of numbers (its rows' commas, a name, spaces).
STRUCTURE_PER_INSTANCE = 64
TEXT_PER_INSTANCE = 1024
ENVELOPE = 1024  # the request's own keys, its batch's brackets, a signature's name

OPEN, CLOSE, QUOTE = (np.isin(np.arange(256), list(chars)) for chars in (b"[{", b"]}", b'"'))
# Stands for a list of numbers in what json.loads reads: a string starting with a backslash,
# which no string of the body holds (read refuses escapes).
MARK = "\\"


def bad(message: str) -> HTTPException:
    return HTTPException(400, message)


@dataclass(frozen=True)
class Request:
    """The body's JSON, each list of numbers in it a string `\\<n>` until asked for."""

    document: object
    body: bytes
    lists: list[tuple[int, int]]  # where each list of numbers lies in the body

    @staticmethod
    def holds_numbers(value: object) -> bool:
        """Whether `value` stands for a list of numbers (or of other values that are no list)."""
        return isinstance(value, str) and value.startswith(MARK)

    def numbers(self, value: object) -> np.ndarray | None:
        """The list of numbers `value` stands for, as float64, or None if it stands for none;
        a 400 if the list holds anything but numbers or is not JSON."""
        if not self.holds_numbers(value):
            return None
        start, end = self.lists[int(value[1:])]
        try:
            values = json.loads(self.body[start:end])
        except ValueError as error:  # not JSON, or an integer over Python's 4,300 digits
            raise bad(f"the request body is not JSON: {one_line(error)}") from None
        kinds = {type(v) for v in values} - {int, float}
        if kinds:
            raise bad(f"pixels must be numbers, got {kind_of(next(iter(kinds)))}")
        try:
            return np.array(values, dtype=np.float64)
        except OverflowError:  # an integer of hundreds of digits
            raise bad("pixels must be within [0, 1]: normalized, value / 255") from None


def read(body: bytes, max_instances: int) -> Request:
    """Parse a request of at most `max_instances` instances, or raise a 400 naming the first
    bound it is over, before building anything of its size."""
    if b"\\" in body:
        raise bad("escapes in strings are not accepted: a request's strings are names")
    chars = np.frombuffer(body, dtype=np.uint8)
    structural = chars == ord("[")
    for char in b']{}"':  # comparisons, in which numpy lets go of the GIL
        structural |= chars == char
    count, most = int(np.count_nonzero(structural)), max_instances * STRUCTURE_PER_INSTANCE + 64
    if count > most:
        raise bad(
            f"{count:,} brackets, braces and quotes: more than {max_instances:,} instances "
            f"hold ({most:,})"
        )
    where = np.flatnonzero(structural)
    kinds = chars[where]
    quotes = QUOTE[kinds]
    opened = np.cumsum(quotes)
    strings = where[quotes]
    lengths = strings[1::2] - strings[0::2][: len(strings) // 2] - 1
    if len(lengths) and (longest := int(lengths.max())) > MAX_STRING:
        raise bad(
            f"a string of {longest:,} characters: a request's strings are names, of at most "
            f"{MAX_STRING}; pixels are numbers"
        )
    outside = (opened % 2 == 0) | quotes  # brackets within a string are text
    where, kinds = where[outside], kinds[outside]
    depth = np.cumsum(OPEN[kinds].astype(np.int32) - CLOSE[kinds])
    if len(depth) and (deepest := int(depth.max())) > MAX_DEPTH:
        raise bad(f"nested {deepest} deep: a request nests lists and objects {MAX_DEPTH} deep")
    innermost = (kinds[:-1] == ord("[")) & (kinds[1:] == ord("]"))
    lists = list(
        zip(where[:-1][innermost].tolist(), (where[1:][innermost] + 1).tolist(), strict=True)
    )
    if lists and (longest := max(end - start for start, end in lists)) > MAX_LIST_BYTES:
        raise bad(f"a list of {longest:,} bytes: 784 pixels take at most {MAX_LIST_BYTES:,}")
    pieces, previous = [], 0
    for number, (start, end) in enumerate(lists):
        pieces += [body[previous:start], f'"{MARK}{MARK}{number}"'.encode()]
        previous = end
    rest = b"".join([*pieces, body[previous:]])
    if len(rest) > (most := max_instances * TEXT_PER_INSTANCE + ENVELOPE):
        raise bad(
            f"{len(rest):,} bytes of JSON outside lists of numbers: more than {max_instances:,} "
            f"instances hold ({most:,})"
        )
    try:
        document = json.loads(rest, object_pairs_hook=unique_keys)
    except ValueError as error:
        raise bad(f"the request body is not JSON: {one_line(error)}") from None
    return Request(document, body, lists)


def unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """An object, refused if it names a key twice: which one counts is anyone's guess."""
    keys = [key for key, _ in pairs]
    if len(set(keys)) < len(keys):
        raise bad(f"a key given twice in one object: {', '.join(sorted(set(keys)))}")
    return dict(pairs)


def kind_of(kind: type) -> str:
    """How a JSON value of this Python type is named in errors."""
    names = {bool: "true/false", type(None): "null", str: "text", dict: "an object"}
    return names.get(kind, "a number")


def one_line(error: ValueError) -> str:
    """json's message without its position, which is the skeleton's or a list's, not the body's."""
    return error.msg if isinstance(error, json.JSONDecodeError) else str(error)
