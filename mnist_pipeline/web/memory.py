"""How the web server gives the memory of a burst of large pictures back to the system (glibc).

Once a large block has been freed, glibc's malloc serves blocks that size from its arenas rather
than mapping them afresh (its mmap threshold rises to the size of each large block freed, up to
32 MiB: python-pillow/Pillow#2738), and what is freed there stays. malloc_trim gives it back,
but not the top of the heap of the arena glibc gives each thread (up to 8 per CPU), which is where
a picture's freed pixels lie; only the main arena's (amule-org/amule#1095 found the same). So the
server's threads share the main arena (use_one_arena) and it is trimmed once no picture is being
read (give_back_free_memory). The threads that read pictures spend their time in Pillow's and
LiteRT's C code, not in malloc, so sharing one arena costs them little.

Measured with benchmarks/web_memory.py (16 clients sending a 2000x2000 PNG for 15 s; the server
idle at 74 MiB): 163 MiB held 5 s after the burst with neither, 142 MiB with the trim alone,
81 MiB with both, for 0.08 s of server CPU per picture against 0.06 s. Pinning the mmap threshold
instead, which maps and zeroes every large block afresh, held 85 MiB for 0.12 s per picture.
With another C library, both functions do nothing.
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
