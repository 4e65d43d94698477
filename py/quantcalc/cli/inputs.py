"""What analyze and compare read: a file, inline --values or text on stdin, as the facade's
source dict; and the ready sets of formats (--preset) that compare and scan share."""

import os
import stat
import sys
from pathlib import Path

from quantcalc import api
from quantcalc.errors import QuantcalcError, shortened
from quantcalc.schema import file_types

MAX_STDIN_BYTES = 1 << 30
LISTED = 5  # tensors named when a file holds several and --tensor is not given


def add_input_arguments(p):
    p.add_argument("input", nargs="?", help="a .npy/.npz/.safetensors/.csv/.txt file, or - for "
                   "text on stdin")
    p.add_argument("--values", help='inline values, e.g. "-1.25, 0.14, 1.46"')
    p.add_argument("--tensor", help="which array of a .npz / .safetensors file")
    p.add_argument("--name", help="tensor name for reports (default: the file or tensor name)")


def source_of(args):
    """(the facade's source dict, the name reports use when --name is not given)."""
    if args.values is not None:
        if args.input is not None:
            raise QuantcalcError("give either INPUT or --values, not both", "values")
        return {"text": args.values}, "values"
    if args.input is None:
        raise QuantcalcError("no input: give a file, - for stdin, or --values", "values")
    if args.input == "-":
        return {"text": read_stdin()}, "stdin"
    path = Path(args.input)
    source = {"file_path": str(path), "file_name": path.name, "tensor": args.tensor}
    return source, args.tensor or chosen_tensor(source) or path.stem


def chosen_tensor(source):
    """The name of the one tensor of a file that holds several (npz, safetensors, GGUF) when
    --tensor is not given; a file with more than one is refused, naming the first few: the
    command does not guess which. None for other files (the analysis says what is wrong with
    a file it cannot read)."""
    kind = file_types.of(source["file_name"])
    if kind is None or not kind.several:
        return None
    reply = api.describe_file(source)
    names = reply.get("tensors") if isinstance(reply, dict) else None
    if not isinstance(names, list) or not names:
        return None
    if len(names) > 1:
        shown = ", ".join(shortened(str(n), 60) for n in names[:LISTED])
        more = f", ... ({len(names):,} in all)" if len(names) > LISTED else ""
        raise QuantcalcError(f"{source['file_name']} holds {len(names):,} tensors: choose one "
                             f"with --tensor NAME ({shown}{more})", "tensor")
    return str(names[0])


def files_of(args) -> list:
    """The input file the command reads (none for --values or stdin: stdin is no file)."""
    return [] if args.values is not None or args.input in (None, "-") else [args.input]


def read_stdin() -> str:
    """Text on standard input, at most MAX_STDIN_BYTES (`< /dev/zero` must not read forever)."""
    mode = os.fstat(sys.stdin.fileno()).st_mode
    if stat.S_ISCHR(mode) and not sys.stdin.isatty():
        raise QuantcalcError("standard input is a device such as /dev/zero, not text; pipe or "
                             "redirect a file of values", "values")
    data = sys.stdin.buffer.read(MAX_STDIN_BYTES + 1)
    if len(data) > MAX_STDIN_BYTES:
        raise QuantcalcError(f"more than {MAX_STDIN_BYTES >> 30} GiB on standard input; save "
                             f"the values to a file (.npy reads fastest)", "values")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise QuantcalcError(f"standard input is not UTF-8 text (byte {exc.start} cannot be "
                             f"decoded)", "values") from None


def add_preset_argument(p, presets):
    """--preset NAME, one of the facade's ready sets (compare_presets)."""
    p.add_argument("--preset", choices=sorted(presets), help="a ready set: " + "; ".join(
        f"{name}: {presets[name]['title']}" for name in sorted(presets)))


def preset_specs(name) -> list:
    """The format specs of the ready set `name` (none for None)."""
    if name is None:
        return []
    return [config["spec"] for config in api.compare_presets()[name]["configs"]]
