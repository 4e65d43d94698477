"""Files the page hands over in parts.

Pyodide's CPython has a 32-bit file offset: it cannot seek past 2 GiB ("Python int too large to
convert to C long"), and a model shard is often 4-5 GB. So the page's worker mounts a large
`File` as slices of at most 1 GiB named `NAME.qcpart-000`, `NAME.qcpart-001`, ... (Blob.slice
costs nothing: no bytes are read or copied), and this module makes them one file again: a
seekable, readable file object whose position is a Python integer, each read going to the part
(or parts) that hold the bytes at an offset below 2 GiB. On the command line files are whole and
opened as usual; the tests split real files into parts to check that both read the same bytes.
"""

import io
import os
import re

PART = ".qcpart-"
PART_NAME = re.compile(r"^(.*)\.qcpart-(\d{3})$")


def parts_of(path):
    """[(part path, size)] of a file mounted in parts, in order, or None."""
    folder, name = os.path.split(path)
    try:
        names = os.listdir(folder or ".")
    except OSError:
        return None
    numbered = sorted((int(m.group(2)), n) for n in names
                      if (m := PART_NAME.match(n)) and m.group(1) == name)
    if not numbered or [k for k, _ in numbered] != list(range(len(numbered))):
        return None
    return [(os.path.join(folder, n), os.path.getsize(os.path.join(folder, n)))
            for _, n in numbered]


def logical_names(names):
    """File names with the parts of one file shown once, as that file."""
    out = []
    for name in names:
        match = PART_NAME.match(name)
        if match is None:
            out.append(name)
        elif match.group(2) == "000":
            out.append(match.group(1))
    return out


def names_in(folder) -> set:
    """The names of the files in `folder` (a file mounted in parts once, by its own name),
    from one listing; empty when the folder cannot be listed."""
    try:
        return set(logical_names(os.listdir(folder or ".")))
    except OSError:
        return set()


def exists(path) -> bool:
    return os.path.exists(path) or parts_of(path) is not None


def size(path) -> int:
    """The file's size; raises OSError as os.stat does."""
    if not os.path.exists(path):
        parts = parts_of(path)
        if parts is not None:
            return sum(n for _, n in parts)
        if not os.path.lexists(path):
            raise FileNotFoundError(2, "No such file or directory")
    if not os.path.isfile(path):
        raise IsADirectoryError(21, "not a regular file")
    return os.stat(path).st_size


def open_file(path):
    """A binary, seekable file object for `path`, whole or in parts."""
    if os.path.exists(path):
        return open(path, "rb")
    parts = parts_of(path)
    if parts is None:
        raise FileNotFoundError(2, "No such file or directory")
    return io.BufferedReader(PartedFile(parts), buffer_size=1 << 20)


class PartedFile(io.RawIOBase):
    """One file made of consecutive parts, each small enough for a 32-bit offset."""

    def __init__(self, parts):
        super().__init__()
        self.parts = parts
        self.starts = []
        total = 0
        for _, n in parts:
            self.starts.append(total)
            total += n
        self.total = total
        self.position = 0
        self.handles = {}

    def readable(self):
        return True

    def seekable(self):
        return True

    def seek(self, offset, whence=io.SEEK_SET):
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.total}[whence]
        self.position = max(0, base + offset)
        return self.position

    def tell(self):
        return self.position

    def readinto(self, buffer):
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view) and self.position < self.total:
            index = max(i for i, start in enumerate(self.starts) if start <= self.position)
            path, n = self.parts[index]
            local = self.position - self.starts[index]
            handle = self.handles.get(index)
            if handle is None:
                handle = self.handles[index] = open(path, "rb", buffering=0)
            handle.seek(local)
            want = min(len(view) - done, n - local)
            got = handle.readinto(view[done:done + want])
            if not got:
                break
            done += got
            self.position += got
        return done

    def close(self):
        for handle in self.handles.values():
            handle.close()
        self.handles.clear()
        super().close()
