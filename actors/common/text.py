"""Text from outside, as every service accepts it.

PostgreSQL `text` cannot hold NUL (asyncpg fails the whole query), and control characters,
lone surrogates or line separators in a name only break what shows it (logs, the admin
panel, a desktop notification). So a one-line text field refuses them all.
"""

import re
from typing import Annotated

from pydantic import AfterValidator, StringConstraints

# C0 and C1 controls (NUL, TAB, LF, ESC, DEL, ...), lone UTF-16 surrogates (Python's json
# lets "\ud800" through), and the Unicode line and paragraph separators.
_NOT_IN_A_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
MAX_NAME = 200


def single_line(value: str) -> str:
    found = _NOT_IN_A_LINE.search(value)
    if found:
        raise ValueError(f"must not contain control characters (found U+{ord(found.group()):04X})")
    return value


# A person's or a product's name: trimmed, 1..200 characters, one line of printable text.
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_NAME),
    AfterValidator(single_line),
]
