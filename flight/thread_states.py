"""Python thread states kept for gRPC's threads from one Flight call to the next.

pyarrow runs every Flight callback (the auth check, the middleware, the handler, each batch
of a generated stream) on one of gRPC's own threads, entering Python through
`PyGILState_Ensure`. A thread without a Python thread state gets a new one for the callback,
with a 16 KB frame stack mapped from the OS, and loses both when the callback returns: some
ten times per query, about 20 µs each (the mapping, its page faults, and the unmapping's
TLB flush on every core): 0.1 – 0.2 ms of a 3 ms `count(*)` through ADBC. `keep()`, called as a
call starts, takes one more reference to the calling thread's state, so the thread keeps it
for all its later callbacks.

gRPC's synchronous server retires threads and starts new ones as load changes (hundreds a
second under 16 clients), and a thread that ends cannot give its state back. So each time a
new thread is kept, the states of kept threads that have ended are deleted (a thread has
ended when the kernel no longer lists its id under /proc/self/task). Where there is no such
list, nothing is kept and pyarrow's default applies.
"""

from __future__ import annotations

import ctypes
import os
import threading

_TASKS = "/proc/self/task"
_api = ctypes.pythonapi
_api.PyThreadState_Get.restype = ctypes.c_void_p
_api.PyThreadState_Clear.argtypes = [ctypes.c_void_p]
_api.PyThreadState_Delete.argtypes = [ctypes.c_void_p]

_kept: dict[int, int] = {}
"""Native thread id -> the address of the thread state kept for it."""
_lock = threading.Lock()
_enabled = os.path.isdir(_TASKS)


def keep() -> None:
    """Keep the calling thread's Python thread state after the current callback returns.

    Only for threads Python did not start (pyarrow's callbacks run on gRPC's): Python frees
    the state of a thread it started when the thread ends, whatever is kept here."""
    if not _enabled:
        return
    tid = threading.get_native_id()
    state = _api.PyThreadState_Get()
    if _kept.get(tid) == state:
        return
    with _lock:
        stale = _kept.pop(tid, None)
        if stale is not None:
            # The id was free to reuse, so the thread that had it has ended.
            _delete(stale)
        _sweep()
        _api.PyGILState_Ensure()
        _kept[tid] = state


def kept() -> int:
    """How many thread states are kept now."""
    return len(_kept)


def _sweep() -> None:
    for tid in [t for t in _kept if not os.path.exists(f"{_TASKS}/{t}")]:
        _delete(_kept.pop(tid))


def _delete(state: int) -> None:
    # The thread is gone and the caller holds the GIL: what CPython does itself for the
    # threads that did not survive a fork.
    _api.PyThreadState_Clear(state)
    _api.PyThreadState_Delete(state)
