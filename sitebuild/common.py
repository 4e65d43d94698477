"""What every build step shares: paths, hashing, logging and the one error type."""

import hashlib
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIST = ROOT / "dist"
CACHE = ROOT / ".cache"
WEB = ROOT / "web"
PACKAGE = ROOT / "py" / "quantcalc"


class BuildError(RuntimeError):
    pass


def log(message):
    print(f"build: {message}", file=sys.stderr, flush=True)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verified(name: str, data: bytes, expected: str, source: str) -> bytes:
    actual = sha256(data)
    if actual != expected:
        raise BuildError(f"{name} from {source} has sha256 {actual}, expected {expected}; "
                         f"refusing to ship it (delete .cache/ to download it again)")
    return data


def run(command, cwd=CACHE):
    try:
        subprocess.run(command, check=True, cwd=cwd, stdout=subprocess.DEVNULL)
    except FileNotFoundError:
        raise BuildError(f"'{command[0]}' is not installed; the build needs it") from None
    except subprocess.CalledProcessError as exc:
        raise BuildError(f"'{' '.join(map(str, command))}' failed with exit status "
                         f"{exc.returncode}") from None
