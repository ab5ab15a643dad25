"""`py_probe`: tools that each try one thing the sandbox must stop or contain.

Test-only. The second build (`next/` first on the path) reports version 2, so
hot-reload tests can tell the builds apart.
"""

from dataclasses import dataclass

import moat
import probe_version


@moat.tool
def py_probe_spin() -> str:
    """Loops forever: the host's deadline must stop it."""
    n = 0
    while True:
        n += 1


@moat.tool
def py_probe_alloc(mb: int) -> int:
    """Allocates and touches memory, then returns how many MiB it held.

    Args:
        mb: How many MiB to allocate.
    """
    if mb < 0:
        raise moat.InvalidArguments("`mb` must not be negative")
    chunks = []
    for _ in range(mb):
        chunk = bytearray(1 << 20)
        for i in range(0, len(chunk), 4096):  # touch every page
            chunk[i] = 1
        chunks.append(chunk)
    return len(chunks)


@moat.tool
def py_probe_raise(message: str) -> str:
    """Raises ValueError with the given message.

    Args:
        message: The exception's message.
    """
    raise ValueError(message)


@moat.tool(read_only=True)
def py_probe_read(path: str) -> str:
    """Reads a text file (from a granted directory) and returns its contents.

    Args:
        path: The guest path of the file.
    """
    with open(path, encoding="utf-8") as f:
        return f.read()


@dataclass
class Version:
    """Which build of the probe answered.

    Attributes:
        version: VERSION from probe_version.py (1, or 2 for the `next/` build).
    """

    version: int


@moat.tool(read_only=True, idempotent=True)
def py_probe_version() -> Version:
    """Reports which build of the probe this is."""
    return Version(probe_version.VERSION)
