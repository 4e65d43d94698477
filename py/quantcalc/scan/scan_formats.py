"""The formats a scan runs: each as the user wrote it ("q4_k", "format=int bits=4
granularity=group") with its label and validated settings, or a named preset of them."""


from quantcalc.engine import compare
from quantcalc.engine.config import Config
from quantcalc.errors import QuantcalcError, printable
from quantcalc.records import record


@record(frozen=True)
class ScanFormat:
    label: str
    settings: tuple   # ((key, value), ...) as given, for reports and recipes
    config: Config

    @property
    def uses_importance(self) -> bool:
        return self.config.format_row.uses_importance


def formats_from_specs(specs) -> list:
    """ScanFormats from "q4_k" or "format=int bits=4 granularity=group" strings, in order."""
    out, labels = [], set()
    for spec in specs:
        text = str(spec).strip()
        settings = compare.parse_spec(text if "=" in text else f"format={text}")
        try:
            config = Config.from_dict(dict(settings))
        except QuantcalcError as exc:
            raise QuantcalcError(f"format '{printable(text)}': {exc.message}", "formats") from None
        label = compare.label_of(settings)
        if label in labels:
            continue
        labels.add(label)
        out.append(ScanFormat(label, tuple(settings.items()), config))
    if not out:
        raise QuantcalcError("choose at least one format to scan with", "formats")
    return out
