"""The decompressed stream of a package: from the `zstd` program when it is installed, else from the
zstandard library in this thread.

Why a process: unpacking hashes every byte on top of what `zstd -d | tar -x` does. In one Python thread
decompression, hashing and writing run in turn; with a decompressing thread they fight over the GIL (measured:
more CPU, slower). `zstd -d` as a child process decompresses on the other CPU while this process hashes and
writes, as in the `zstd | tar` pipeline a user would run. A one-file package is zstd's stdin itself, and the
progress bar reads zstd's offset in the file description they share (1 GiB, interleaved runs: 1.20 s, not 1.73 s
through a feeder); the parts of a split package, which are hashed on the way, are piped in by a feeder thread.
"""

from __future__ import annotations

import fcntl
import os
import queue
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable
from typing import Any

import zstandard

from regtui.oci.zarf.sources import PartsReader

F_SETPIPE_SZ = 1031  # Linux: a 1 MiB pipe instead of 64 KiB, fewer reads
FEED = 1 << 20


class ZstdError(Exception):
    """The data is not valid zstd (the program's own message)."""


class Decompressed:
    """`readinto` the decompressed bytes of `reader`; `close` stops everything started for it."""

    def __init__(self, reader: PartsReader, chunk: int, compressed: bool = True):
        self.reader = reader
        self.proc: subprocess.Popen[bytes] | None = None
        self.feeder: threading.Thread | None = None
        self.feed_error: BaseException | None = None
        self.lib: Any = None  # what readinto reads from in this thread, when no zstd process does the work
        self.direct: Any = None  # the package file, zstd's stdin, when one file needs no hash of its own
        self.direct_read = 0
        exe = shutil.which("zstd")
        if not compressed:  # a split uncompressed package (`.tar.part000`): the parts are the tar
            self.lib = reader
            return
        if exe is None:
            self.lib = zstandard.ZstdDecompressor().stream_reader(reader, read_size=chunk, closefd=False)  # type: ignore[arg-type]
            return
        if len(reader.paths) == 1 and not reader.hashed:
            self.direct = open(reader.paths[0], "rb")  # noqa: SIM115 - closed by close()
        try:
            self.proc = subprocess.Popen(
                [exe, "-d", "-c", "-q", "--no-progress"],
                stdin=self.direct or subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        except BaseException:
            if self.direct is not None:
                self.direct.close()
            raise
        assert self.proc.stdout is not None
        try:
            fcntl.fcntl(self.proc.stdout.fileno(), F_SETPIPE_SZ, 1 << 20)
        except OSError:
            pass  # a smaller pipe only means more reads
        if self.direct is None:
            self.feeder = threading.Thread(target=self._feed, daemon=True, name="regtui-unpack-feed")
            self.feeder.start()

    @property
    def consumed(self) -> int:
        """Bytes of the package read so far, for the progress bar."""
        if self.direct is not None and not self.direct.closed:
            self.direct_read = os.lseek(self.direct.fileno(), 0, os.SEEK_CUR)  # zstd's: the description is shared
        return self.direct_read if self.direct is not None else self.reader.count

    def _feed(self) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        fd = self.proc.stdin.fileno()
        buf = bytearray(FEED)
        view = memoryview(buf)
        try:
            while n := self.reader.readinto(buf):
                piece = view[:n]
                while piece:
                    piece = piece[os.write(fd, piece) :]
        except BrokenPipeError:
            pass  # zstd stopped (an error, or we stopped it): its exit status tells which
        except BaseException as e:  # a part that cannot be read: raised by the consumer
            self.feed_error = e
        finally:
            try:
                self.proc.stdin.close()
            except OSError:
                pass

    def readinto(self, buf: bytearray) -> int:
        if self.lib is not None:
            try:
                return int(self.lib.readinto(buf))
            except zstandard.ZstdError as e:
                raise ZstdError(str(e)) from None
        assert self.proc is not None and self.proc.stdout is not None
        n = self.proc.stdout.readinto(buf)  # type: ignore[attr-defined]  # a BufferedReader
        if not n:
            self._check()
        return n or 0

    def _check(self) -> None:
        """At the end of the output: did zstd finish cleanly?"""
        assert self.proc is not None
        if self.feeder is not None:
            self.feeder.join()
        if self.feed_error is not None:
            raise self.feed_error
        code = self.proc.wait()
        if code != 0:
            err = self.proc.stderr.read().decode("utf-8", "replace") if self.proc.stderr else ""
            lines = [l.strip() for l in err.splitlines() if l.strip()]
            raise ZstdError(lines[-1].removeprefix("zstd: ").removeprefix("stdin : ") if lines else f"exit {code}")

    def finish(self, budget: int = 16 << 20) -> None:
        """After the tar's end: read what is left (the tar's padding) so zstd's exit status, and with it the frame
        checksum, is checked; a package with more than `budget` bytes after its end is not read further."""
        scratch = bytearray(1 << 20)
        while budget > 0:
            n = self.readinto(scratch)
            if not n:
                return
            budget -= n

    def close(self) -> None:
        """Stop zstd (ours, by PID) and the feeder; whatever the output still held is not needed."""
        if self.proc is not None:
            if self.proc.poll() is None:
                os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            for f in (self.proc.stdout, self.proc.stderr):
                if f is not None:
                    f.close()
        if self.feeder is not None:
            self.feeder.join()
        if self.direct is not None:
            _ = self.consumed  # the last offset, for the final progress report
            self.direct.close()


class ParallelHash:
    """Hashes a piece in a second thread while this one writes it: both release the GIL, so on two CPUs the
    piece costs the longer of the two instead of their sum (sha256 is the one cost `zstd | tar` does not pay)."""

    MIN = 256 << 10  # smaller pieces are hashed in place: handing them over costs more

    def __init__(self) -> None:
        self.todo: queue.Queue[tuple[Any, memoryview] | None] = queue.Queue(1)
        self.done: queue.Queue[None] = queue.Queue(1)
        self.thread = threading.Thread(target=self._run, daemon=True, name="regtui-unpack-hash")
        self.thread.start()

    def _run(self) -> None:
        while (item := self.todo.get()) is not None:
            item[0].update(item[1])
            self.done.put(None)

    def update_while(self, h: Any, piece: memoryview, work: Callable[[], None]) -> None:
        """h.update(piece) and work() at once; returns when both are done (the piece may then be reused)."""
        if len(piece) < self.MIN:
            h.update(piece)
            work()
            return
        self.todo.put((h, piece))
        try:
            work()
        finally:
            self.done.get()

    def close(self) -> None:
        self.todo.put(None)
        self.thread.join()
