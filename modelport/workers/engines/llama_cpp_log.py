"""llama.cpp's own log lines through Python logging; loading without swapping file descriptors.

llama-cpp-python prints native log lines to stderr from a callback it installs at import and,
when a model loads with ``verbose=False``, silences the process by swapping file descriptors 1
and 2 (its ``suppress_stdout_stderr``). Two loads at once restore each other's swaps out of order
and can leave the whole process writing to ``/dev/null``: a server with several replicas lost
every log line after its models loaded. So modelport installs its own callback
(``llama_log_set``), which sends each native line to the ``modelport.llama_cpp`` logger
(warnings and errors as such, the rest at DEBUG, or INFO once a model asked to be ``verbose``),
and turns the library's redirection off: with the callback in place it has nothing to silence.
"""

from __future__ import annotations

import ctypes
import importlib
import logging
import threading
from types import TracebackType
from typing import Any

__all__ = ["NativeLog", "native_log"]

logger = logging.getLogger("modelport.llama_cpp")

# ggml.h's ggml_log_level: NONE 0, DEBUG 1, INFO 2, WARN 3, ERROR 4, CONT 5 (continues the last
# line). llama-cpp-python's own comment still has the older order, with INFO at 1.
_INFO, _WARN, _ERROR, _CONT = 2, 3, 4, 5


class _NoRedirect:
    """Stands in for ``suppress_stdout_stderr``: a context that leaves the file descriptors alone."""

    def __init__(self, disable: bool = True) -> None:
        self.disable = disable

    def __enter__(self) -> _NoRedirect:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        return None


class NativeLog:
    """The process's one llama.cpp log callback, and the reference that keeps it alive."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lines = threading.Lock()  # engines on several threads log at once
        self._callback: Any = None  # ctypes frees a callback nobody references; llama.cpp would call freed memory
        self._pending: list[str] = []
        self._level = logging.DEBUG
        self.verbose = False

    def install(self, *, verbose: bool = False) -> None:
        """Routes llama.cpp's logs to ``modelport.llama_cpp`` and turns its fd swapping off (idempotent).

        Args:
            verbose: Log llama.cpp's informational lines at INFO rather than DEBUG from now on.
        """
        import llama_cpp

        with self._lock:
            self.verbose = self.verbose or verbose
            if self._callback is not None:
                return
            self._callback = llama_cpp.llama_log_callback(self._receive)
            llama_cpp.llama_log_set(self._callback, ctypes.c_void_p(0))
            for name in ("llama_cpp.llama", "llama_cpp._internals", "llama_cpp.llama_chat_format"):
                module = importlib.import_module(name)
                if hasattr(module, "suppress_stdout_stderr"):
                    setattr(module, "suppress_stdout_stderr", _NoRedirect)  # noqa: B010 - the library's own name

    def _receive(self, level: int, text: bytes, user_data: Any) -> None:
        # Called from llama.cpp on whichever thread logs; it must never raise.
        with self._lines:
            self._take(level, text)

    def _take(self, level: int, text: bytes) -> None:
        try:
            if level != _CONT:
                self._flush()
                self._level = (
                    logging.ERROR
                    if level == _ERROR
                    else logging.WARNING
                    if level == _WARN
                    else logging.INFO
                    if self.verbose and level == _INFO
                    else logging.DEBUG
                )
            self._pending.append(text.decode("utf-8", errors="replace"))
            if self._pending[-1].endswith("\n"):
                self._flush()
        except Exception:  # noqa: BLE001 - a log line is never worth a crash inside C
            self._pending.clear()

    def _flush(self) -> None:
        line = "".join(self._pending).rstrip()
        self._pending.clear()
        if line:
            logger.log(self._level, "%s", line)


native_log = NativeLog()
"""The process's callback holder (llama.cpp keeps one log callback per process)."""
