"""Moving and hashing bytes: the kernel copy hashed through a map, read()+write() with a
hasher thread, sparse files, small files read whole, files written with no name and
linked whole (O_TMPFILE), and a thread pool without `concurrent.futures`."""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

TYPE_CHECKING = False  # typing's import is not paid at run time (see gitmodel.record)
if TYPE_CHECKING:
    from typing import Protocol, TypeVar

    _T = TypeVar("_T")
    _R = TypeVar("_R")

# 256 KiB chunks: large enough that hashlib drops the GIL and syscalls stay few, small
# enough that the ring (2 MiB) stays in the CPU's cache between the reader writing a
# chunk and the hasher reading it. Measured on 1 GiB on a quiet 2-core VM: 128 KiB to
# 1 MiB cost 2.4-2.7 CPU-seconds, 4 MiB 3.7-4.1 (the ring no longer fits in cache).
CHUNK = 256 * 1024
# Buffers in flight per file (reused, never reallocated): memory is bounded to
# RING * CHUNK per file being stored, whatever the file's size.
RING = 8
LINK_TYPES = ("reflink", "hardlink", "symlink", "copy")
DEFAULT_LINK_TYPES = ("reflink", "copy")  # DVC's default
_FICLONE = 0x40049409  # linux/fs.h
# errnos that mean "this link type is not possible here", not "something is broken"
_LINK_FALLBACK_ERRNOS = {
    errno.EXDEV,
    errno.EPERM,
    errno.EMLINK,
    errno.ENOTSUP,
    errno.EOPNOTSUPP,
    errno.EINVAL,
    errno.ENOTTY,
    errno.ENOSYS,
    errno.EBADF,
}

# ... and that the kernel copy or the map of it is not possible here (user space is)
_COPY_FALLBACK_ERRNOS = _LINK_FALLBACK_ERRNOS | {errno.ENODEV, errno.EACCES}

Progress = Callable[[int], None]

if TYPE_CHECKING:

    class Reporter(Protocol):
        """Progress for long transfers; the CLI draws it, the library only reports."""

        def start(self, description: str, total: int) -> Progress: ...

        def stop(self) -> None: ...


def _hash_and_copy(
    src_fd: int,
    dst_fd: int | None,
    size_hint: int,
    progress: Progress | None,
    overlap: bool = True,
) -> str:
    """md5 of everything readable from src_fd, writing it to dst_fd in the same pass.

    The reader (this thread) reads each chunk once into a reused buffer, writes it to
    dst_fd and hands the very same bytes to a hasher thread, so the object's name is
    always the md5 of exactly what was written, even if the source changes meanwhile.
    hashlib drops the GIL on large buffers, so reading, writing and hashing overlap on
    two cores and the whole pass costs about one md5 of the file.

    overlap=False does all three in this thread: for a pool that already keeps every core
    busy with one file each, the hand-offs only cost (8 x 128 MiB on 2 cores: ~8% more
    CPU with a hasher thread per file).
    """
    import hashlib  # lazy: OpenSSL's start-up is paid only by commands that hash
    import queue

    md5 = hashlib.md5()
    if (dst_fd is None and size_hint <= CHUNK) or not overlap:
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        while n := os.readv(src_fd, [buf]):
            if dst_fd is not None:
                out = view[:n]
                while out:
                    out = out[os.write(dst_fd, out) :]
            md5.update(view[:n] if n < CHUNK else buf)
            if progress:
                progress(n)
        return md5.hexdigest()
    free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
    for _ in range(RING):
        free.put(bytearray(CHUNK))
    filled: queue.SimpleQueue[tuple[bytearray, int] | None] = queue.SimpleQueue()
    failure: list[BaseException] = []

    def hasher() -> None:
        try:
            while (item := filled.get()) is not None:
                buf, n = item
                md5.update(memoryview(buf)[:n] if n < CHUNK else buf)
                free.put(buf)
        except BaseException as exc:  # pragma: no cover - hashlib does not fail on bytes
            failure.append(exc)
            free.put(bytearray(CHUNK))  # never leave the reader waiting for a buffer

    worker = threading.Thread(target=hasher, daemon=True)
    worker.start()
    try:
        while True:
            buf = free.get()
            n = os.readv(src_fd, [buf])
            if not n:
                break
            if dst_fd is not None:
                view = memoryview(buf)[:n]
                while view:
                    view = view[os.write(dst_fd, view) :]
            filled.put((buf, n))
            if progress:
                progress(n)
            if failure:
                break
    finally:
        filled.put(None)
        worker.join()
    if failure:
        raise failure[0]
    return md5.hexdigest()


# One copy_file_range call: large enough to cost nothing, small enough to move a progress
# bar; when storing, each window is then mapped and hashed, which keeps resident memory to
# about one window per file.
COPY_WINDOW = 16 * 1024 * 1024


def _copy_and_hash(
    src_fd: int, dst_fd: int, size_hint: int, progress: Progress | None, overlap: bool = True
) -> str:
    """Copy src_fd to dst_fd (both at offset 0) and return the md5 of what dst_fd holds.

    The kernel copies (`copy_file_range`: no trip through user space, a reflink where the
    filesystem can) and the hash reads the *copy* through a memory map, so each byte is
    moved once and read once, and the object's name is the md5 of exactly its content,
    whatever happens to the source meanwhile. Against read()+write() with the hash in a
    thread (_hash_and_copy), measured on 1 GiB on 2 cores: 1.86-1.96 s instead of
    2.13-2.62 s, and 0.6 CPU-seconds less. With overlap, a second thread copies ahead
    while this one hashes. Where the kernel will not copy this pair of files (another
    filesystem, an old kernel), _hash_and_copy does the work instead.
    """
    import hashlib
    import mmap

    md5 = hashlib.md5()
    windows: list[tuple[int, int]] = []  # (offset, length) copied so far, in order
    done = threading.Event()
    stop = threading.Event()  # set by the hashing side: copy no further
    ready = threading.Condition()
    failure: list[BaseException] = []

    def copy_all() -> None:
        offset = 0
        try:
            while not stop.is_set():
                n = os.copy_file_range(src_fd, dst_fd, COPY_WINDOW)
                if not n:
                    break
                with ready:
                    windows.append((offset, n))
                    ready.notify()
                offset += n
            if offset < size_hint and not stop.is_set():
                # Stopped short of the size fstat gave: the source shrank meanwhile, or
                # this kernel copies less than it should. User space settles which.
                raise OSError(errno.EINVAL, "copy_file_range stopped short")
        except BaseException as exc:
            failure.append(exc)
        finally:
            done.set()
            with ready:
                ready.notify()

    def hash_window(offset: int, length: int) -> None:
        # a map starts on a page boundary; a short copy can leave the window off one
        skew = offset % mmap.ALLOCATIONGRANULARITY
        with mmap.mmap(dst_fd, skew + length, prot=mmap.PROT_READ, offset=offset - skew) as m:
            view = memoryview(m)
            try:
                for at in range(skew, skew + length, CHUNK):
                    md5.update(view[at : min(at + CHUNK, skew + length)])
            finally:
                view.release()
        if progress:
            progress(length)

    def hash_all() -> None:
        hashed = 0
        while not failure:
            with ready:
                while hashed == len(windows) and not done.is_set():
                    ready.wait()
                todo = windows[hashed:]
            if not todo and done.is_set():
                return
            for window in todo:
                if failure:
                    return
                try:
                    hash_window(*window)
                except OSError as exc:  # this filesystem cannot map the copy
                    failure.append(exc)
                    return
            hashed += len(todo)

    if overlap and size_hint > COPY_WINDOW:
        copier = threading.Thread(target=copy_all, daemon=True)
        copier.start()
        try:
            hash_all()
        finally:
            # Never return while the copier may still write through these descriptors:
            # the caller closes them, and their numbers can be reused at once.
            stop.set()
            copier.join()
    else:
        copy_all()  # windows fills as it copies
        hash_all()
    if failure:
        exc = failure[0]
        if isinstance(exc, OSError) and exc.errno in _COPY_FALLBACK_ERRNOS:
            # The kernel would not copy this pair, or the copy cannot be mapped: start
            # again through user space.
            os.lseek(src_fd, 0, os.SEEK_SET)
            os.lseek(dst_fd, 0, os.SEEK_SET)
            os.ftruncate(dst_fd, 0)
            return _hash_and_copy(src_fd, dst_fd, size_hint, progress, overlap)
        raise exc
    return md5.hexdigest()


def _is_sparse(st: os.stat_result) -> bool:
    """Fewer blocks than bytes: the file has holes (a preallocated checkpoint, `truncate`)."""
    return st.st_size > CHUNK and st.st_blocks * 512 < st.st_size


def _data_segments(fd: int, size: int) -> Iterator[tuple[int, int]]:
    """(start, end) of each run of data in fd; what lies between is a hole (zeros)."""
    offset = 0
    while offset < size:
        try:
            start = os.lseek(fd, offset, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:
                return  # only a hole from offset to the end
            raise
        end = os.lseek(fd, start, os.SEEK_HOLE)
        yield start, min(end, size)
        offset = end


_ZEROS = bytes(CHUNK)


def _sparse_copy_and_hash(src_fd: int, dst_fd: int, size: int, progress: Progress | None) -> str:
    """Copy src_fd's data runs to dst_fd at the same offsets, leaving its holes as holes,
    and return the md5 of the whole content (a hole hashes as the zeros it reads as).

    Each data chunk is read once, written and hashed from the same buffer, so the name is
    the md5 of what the object holds, as in _hash_and_copy.
    """
    import hashlib

    md5 = hashlib.md5()
    done = 0
    buf = bytearray(CHUNK)
    view = memoryview(buf)

    def zeros(upto: int) -> None:
        nonlocal done
        while done < upto:
            n = min(CHUNK, upto - done)
            md5.update(_ZEROS[:n] if n < CHUNK else _ZEROS)
            done += n
            if progress:
                progress(n)

    short = False
    for start, end in _data_segments(src_fd, size):
        zeros(start)
        while done < end:
            n = os.preadv(src_fd, [view[: min(CHUNK, end - done)]], done)
            if not n:
                short = True  # the source shrank meanwhile: what was read is what is stored
                break
            out = view[:n]
            at = done
            while out:
                w = os.pwrite(dst_fd, out, at)
                out, at = out[w:], at + w
            md5.update(view[:n])
            done += n
            if progress:
                progress(n)
        if short:
            break
    if not short:
        zeros(size)  # a hole up to the end
    os.ftruncate(dst_fd, done)
    return md5.hexdigest()


def parallel_map(fn: Callable[[_T], _R], items: Sequence[_T], jobs: int) -> list[_R]:
    """[fn(x) for x in items] on `jobs` threads, in order; the first exception is raised.

    ThreadPoolExecutor would do, but `concurrent.futures` imports `logging` and costs
    15-25 ms of start-up here; `git model status` of a directory pays for this instead.
    """
    if jobs < 2 or len(items) < 2:
        return [fn(x) for x in items]
    slots: list[_R] = [None] * len(items)  # type: ignore[list-item]  # each filled below
    todo = iter(range(len(items)))
    lock = threading.Lock()
    failures: list[BaseException] = []

    def worker() -> None:
        while not failures:
            with lock:
                i = next(todo, None)
            if i is None:
                return
            try:
                slots[i] = fn(items[i])
            except BaseException as exc:
                failures.append(exc)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(min(jobs, len(items)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise failures[0]
    return slots


def hash_file(
    path: str | os.PathLike[str], progress: Progress | None = None, overlap: bool = True
) -> str:
    """The md5 of a file's bytes (DVC 3 `hash: md5`)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return _hash_and_copy(fd, None, os.fstat(fd).st_size, progress, overlap)
    finally:
        os.close(fd)


# Files up to this size are read whole into one buffer and hashed in the thread that read
# them: for an 8 KiB file a hand-off to a hasher thread costs more than the hash.
SMALL = 1 << 20


def _read_fd(fd: int, size: int) -> bytes | None:
    """All of fd from its start when it is at most SMALL bytes (size: what fstat said)."""
    data = os.read(fd, size + 1)  # one read: asking one byte more shows the end came
    if len(data) != size:  # it grew, shrank or the read came up short: read to the end
        while more := os.read(fd, CHUNK):
            data += more
            if len(data) > SMALL:
                return None
    return data if len(data) <= SMALL else None


def _read_small(path: str, size: int | None = None) -> bytes | None:
    """The bytes of a regular file of at most SMALL bytes, else None (never a symlink).

    size: what a listing's stat said, which saves the fstat; the read still finds the
    end wherever it is (_read_fd), so a file that changed since is read whole all the same.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        if size is None or size > SMALL:
            size = os.fstat(fd).st_size
        return _read_fd(fd, size) if size <= SMALL else None
    finally:
        os.close(fd)


# O_TMPFILE (Linux 3.11+): a file that has no name until linkat gives it one. An object
# written this way can never be seen half-written under any name, a kill leaves nothing
# behind (not even a temporary to clean up), and the name is given in the object's own
# directory: no temporary directory entry, no rename between directories (which takes the
# filesystem's rename lock and both directories' locks).
_O_TMPFILE = getattr(os, "O_TMPFILE", 0)
# ... and the errnos that say this filesystem or kernel has no such files (old kernels
# open the directory itself: EISDIR), or that linking one through /proc is not possible
# here (no /proc: ENOENT).
_NO_NAMELESS_ERRNOS = {
    errno.EOPNOTSUPP,
    errno.ENOTSUP,
    errno.EISDIR,
    errno.EINVAL,
    errno.ENOSYS,
    errno.EPERM,
    errno.EACCES,
}


def write_nameless(
    dir_fd: int,
    name: str,
    data: bytes,
    mode: int,
    fsync: bool,
    replace: bool = False,
    made_in: int | None = None,
) -> os.stat_result | None:
    """Write data as the file `name` of the directory dir_fd, which appears whole or not at
    all; the new file's stat (inode, mtime and size survive the naming).

    None: this filesystem or kernel cannot (no O_TMPFILE, no /proc to link through):
    nothing was written, and the caller writes a temporary name and renames it instead.
    When name exists: FileExistsError, nothing changed, unless replace, which names the
    file `name.<12 hex>.tmp` and renames that over name (a rename replaces a link or a
    file, never writes through it).

    made_in: a directory of the same filesystem to make the unnamed file in, if not
    dir_fd. ext4 places a new inode by the directory it is made in, and when that
    directory's block group is full it looks for another one per directory: objects made
    in each of 256 object directories landed in 229 block groups for 50,000 files (each
    group's bitmap and inode table to read and write back), made in one directory they
    fill a few groups in turn.
    """
    if not _O_TMPFILE:
        return None
    try:
        fd = os.open(
            ".",
            os.O_WRONLY | _O_TMPFILE | os.O_CLOEXEC,
            mode,
            dir_fd=dir_fd if made_in is None else made_in,
        )
    except OSError as exc:
        if exc.errno in _NO_NAMELESS_ERRNOS:
            return None
        raise
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if fsync:
            os.fsync(fd)
        st = os.fstat(fd)
        # linkat(AT_SYMLINK_FOLLOW) of the descriptor's /proc link: what names an
        # O_TMPFILE file without privileges (AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH).
        own = f"/proc/self/fd/{fd}"
        try:
            os.link(own, name, dst_dir_fd=dir_fd)
        except FileExistsError:
            if not replace:
                raise
            tmp = f"{name}.{os.urandom(6).hex()}.tmp"  # the name _tmp_name gives
            os.link(own, tmp, dst_dir_fd=dir_fd)
            try:
                os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            except BaseException:
                try:
                    os.unlink(tmp, dir_fd=dir_fd)
                except OSError:
                    pass
                raise
        except OSError as exc:
            if exc.errno in _NO_NAMELESS_ERRNOS or (
                made_in is not None and exc.errno == errno.EXDEV
            ):
                return None  # (made_in on another filesystem than dir_fd: a mount between)
            if exc.errno in (errno.ENOENT, errno.EXDEV) and not os.path.isdir("/proc/self/fd"):
                return None  # no /proc here (with /proc, ENOENT: the directory went away)
            raise
        return st
    finally:
        os.close(fd)


def _tmp_name(final: Path) -> Path:
    # os.urandom, not uuid: `import uuid` pulls in `platform` (~5 ms on every command).
    return final.with_name(f"{final.name}.{os.urandom(6).hex()}.tmp")


def _reflink(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    import fcntl

    with open(src, "rb") as s, open(dst, "wb") as d:
        try:
            fcntl.ioctl(d.fileno(), _FICLONE, s.fileno())
        except OSError:
            os.unlink(dst)
            raise


def _copy(
    src: str | os.PathLike[str], dst: str | os.PathLike[str], progress: Progress | None = None
) -> None:
    # copy_file_range keeps the bytes in the kernel (and reflinks where the fs can).
    with open(src, "rb") as s, open(dst, "wb") as d:
        st = os.fstat(s.fileno())
        size = st.st_size
        if _is_sparse(st):
            _copy_sparse(s.fileno(), d.fileno(), size, progress)
            return
        offset = 0
        try:
            while offset < size:
                n = os.copy_file_range(s.fileno(), d.fileno(), min(size - offset, COPY_WINDOW))
                if n == 0:
                    break  # the kernel stopped short of the size: user space goes on below
                offset += n
                if progress:
                    progress(n)
        except OSError as exc:
            if exc.errno not in _LINK_FALLBACK_ERRNOS:
                raise
        # What the kernel did not copy (it refused, or stopped early), read() and write() do;
        # after a whole copy this reads nothing.
        s.seek(offset)
        d.seek(offset)
        while chunk := s.read(CHUNK):
            d.write(chunk)
            if progress:
                progress(len(chunk))


def _copy_sparse(src_fd: int, dst_fd: int, size: int, progress: Progress | None) -> None:
    """Copy the data runs of src_fd only; its holes stay holes in dst_fd."""
    for start, end in _data_segments(src_fd, size):
        offset = start
        while offset < end:
            n = 0
            try:
                n = os.copy_file_range(
                    src_fd, dst_fd, min(end - offset, COPY_WINDOW), offset, offset
                )
            except OSError as exc:
                if exc.errno not in _COPY_FALLBACK_ERRNOS:
                    raise
            if not n:  # refused or stopped short: user space for this window
                chunk = os.pread(src_fd, min(end - offset, CHUNK), offset)
                if not chunk:
                    break
                n = os.pwrite(dst_fd, chunk, offset)
            offset += n
            if progress:
                progress(n)
    os.ftruncate(dst_fd, size)
