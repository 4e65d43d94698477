"""The input file types, declared once: which reader reads each, how, and which tools take it.

Every question about a file's name is answered here: the calculator's file input (readers/text
for files read whole, readers/sources for those read by offset), the model scan
(readers/checkpoint), the page (its `accept=` attributes and the lists of types in its text, from
the copy build.py generates into schema.js; its tensor chooser; whether the worker hands Python a
large file in slices) and the messages that list what is accepted.

Plain Python with no numpy, like the rest of schema/, so build.py can read it.
"""

from quantcalc.records import record

CALCULATOR, SCAN, IMATRIX = "calculator", "scan", "imatrix"
TOOLS = (CALCULATOR, SCAN, IMATRIX)


@record(frozen=True)
class FileType:
    """One kind of input file, known by the end of its name.

    Args:
        suffix: the end of the name, lower case, matched case-insensitively (the longest wins:
            ".safetensors.index.json" before any shorter suffix).
        label: what people call it.
        reader: what reads its tensors: "text" (pasted numbers, CSV), "npy", "npz",
            "safetensors", "gguf" (readers/text, arrays, checkpoint, gguf), "index" (a sharded
            checkpoint's index, read for the shards it names), "imatrix" (readers/imatrix, which
            reads any importance matrix, GGUF or legacy, by its first bytes), "config" (a
            model's config.json: no tensors, read beside them by api/model_facts for the
            architecture, head counts and quantization_config); None when refused.
        by_offset: the chosen tensor is read by offset (headers first), never the whole file, so
            the file may be of any size; otherwise the calculator reads it whole.
        several: it holds several tensors, so the user picks one (the page's tensor chooser).
        tools: the tools whose file inputs take it.
        refused: why it is never opened (it is taken only to say so), or None.
    """

    suffix: str
    label: str
    reader: str | None
    tools: tuple
    by_offset: bool = False
    several: bool = False
    refused: str | None = None

    def refusal(self, file_name: str) -> str:
        """Why the file `file_name`, of this refused type, is not opened."""
        return f"{file_name} is a {self.label}: {self.refused}"

    def to_dict(self) -> dict:
        return {"suffix": self.suffix, "label": self.label, "reader": self.reader,
                "tools": list(self.tools), "by_offset": self.by_offset, "several": self.several,
                "refused": self.refused}


PICKLE_REFUSED = ("loading one runs code stored in the file, so quantcalc does not open it. "
                  "Convert it to safetensors first (the safetensors package's convert script, or "
                  "torch.load then safetensors.torch.save_file on a machine you trust)")

FILE_TYPES = (
    FileType(".npy", "NumPy array", "npy", (CALCULATOR, SCAN)),
    FileType(".npz", "NumPy archive", "npz", (CALCULATOR, SCAN), several=True),
    FileType(".safetensors", "safetensors", "safetensors", (CALCULATOR, SCAN), by_offset=True,
             several=True),
    FileType(".safetensors.index.json", "safetensors index", "index", (SCAN,), by_offset=True,
             several=True),
    FileType(".gguf", "GGUF", "gguf", (CALCULATOR, SCAN, IMATRIX), by_offset=True, several=True),
    FileType(".csv", "CSV", "text", (CALCULATOR,)),
    FileType(".txt", "text", "text", (CALCULATOR,)),
    # a model folder's config.json, taken with the tensors so the page has it too (the
    # architecture names the GGUF tensors a plan exports); other *config.json files are taken
    # and skipped alike (tokenizer_config.json says nothing quantcalc uses)
    FileType("config.json", "model configuration", "config", (SCAN,)),
    FileType(".dat", "llama.cpp importance matrix (legacy)", "imatrix", (IMATRIX,)),
    FileType(".imatrix", "llama.cpp importance matrix", "imatrix", (IMATRIX,)),
    # taken by the scan (a model folder often has them) only to say why they are not opened
    *(FileType(suffix, "PyTorch pickle", None, (SCAN,), refused=PICKLE_REFUSED)
      for suffix in (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")),
)


def of(name) -> FileType | None:
    """The type of a file by its name (the longest suffix that matches), or None."""
    lower = str(name).lower()
    found = [t for t in FILE_TYPES if lower.endswith(t.suffix)]
    return max(found, key=lambda t: len(t.suffix)) if found else None


def taken_by(tool: str, refused: bool = False) -> tuple:
    """The types of tensor files `tool` reads (with those it takes only to refuse, if
    `refused`); a config.json, taken beside them, is not one."""
    return tuple(t for t in FILE_TYPES if tool in t.tools and (refused or t.refused is None)
                 and t.reader != "config")


def listed(tool: str, each=str) -> str:
    """The suffixes `tool` reads, as a sentence writes them: ".npy, .npz or .csv" (`each`
    writes one suffix: the page's text puts each in <code>)."""
    suffixes = [each(t.suffix) for t in taken_by(tool)]
    return suffixes[0] if len(suffixes) == 1 else \
        f"{', '.join(suffixes[:-1])} or {suffixes[-1]}"


def accept(tool: str) -> str:
    """The `accept=` attribute of the tool's file input. File pickers match a name's last
    extension only, so an index is offered as .json; pickles are offered so they can be refused
    with the reason."""
    patterns = ["." + t.suffix.rsplit(".", 1)[-1] for t in taken_by(tool, refused=True)]
    return ",".join(dict.fromkeys(patterns))


def page_table() -> dict:
    """The page's copy (build.py writes it into schema.js)."""
    return {"types": [t.to_dict() for t in FILE_TYPES],
            "tools": {tool: {"accept": accept(tool), "listed": listed(tool)} for tool in TOOLS}}
