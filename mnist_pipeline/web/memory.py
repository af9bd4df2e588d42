"""How the web server gives the memory of a burst of large pictures back to the system (glibc).

Once a large block has been freed, glibc's malloc serves blocks that size from its arenas rather
than mapping them afresh (python-pillow/Pillow#2738), and what is freed there stays. malloc_trim
gives it back, but not from the top of the heap of the arena glibc gives each thread, which is
where a picture's freed pixels lie (amule-org/amule#1095). So the server's threads share the main
arena (use_one_arena), trimmed once no picture is being read (give_back_free_memory): the threads
spend their time in Pillow's and LiteRT's C code, not in malloc. docs/web.md has the figures
(benchmarks/web_memory.py). With another C library, both functions do nothing.
"""

import ctypes
import platform

M_ARENA_MAX = -8  # mallopt's number for the largest number of arenas, from glibc's malloc.h

GLIBC = ctypes.CDLL(None) if platform.libc_ver()[0] == "glibc" else None


def use_one_arena() -> None:
    """Have every thread allocate from the main arena: call before the server's threads start."""
    if GLIBC:
        GLIBC.mallopt(M_ARENA_MAX, 1)


def give_back_free_memory() -> None:
    """Give the arenas' free memory back to the system: a tenth of a millisecond after a burst."""
    if GLIBC:
        GLIBC.malloc_trim(0)
