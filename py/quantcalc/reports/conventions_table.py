"""The "Why do they differ?" table (engine/framework_differences.py) as text for the terminal."""

REASON_WORDS = {"calibration": "calibration rule", "floor": "scale floor",
                "scale_rule": "scale rule", "float32": "float32 arithmetic (ties)"}


def why(row) -> str:
    """The reasons of a row's differing codes in words: "1613 scale rule"; "" when none."""
    return ", ".join(f"{n} {REASON_WORDS[reason]}" for reason, n in row["reasons"].items() if n)


def text(doc) -> str:
    head = ("Why do they differ? The same settings under each framework's convention "
            f"(codes compared over {doc['count']} of {doc['total']} values)")
    lines = [head, f"{'Convention':<21} {'Scale':>14} {'Zero pt':>7} {'Codes ≠ exact':>13} "
             f"{'SQNR (dB)':>10}  Why"]
    for row in doc["rows"]:
        if "refused" in row:
            lines.append(f"{row['label']:<21} refused: {row['refused']}")
            continue
        zero = "" if row["zero_point"] is None else str(row["zero_point"])
        scale = f"{row['scale']:.9g}" + ("…" if row["segments"] > 1 else "")
        lines.append(f"{row['label']:<21} {scale:>14} {zero:>7} {row['codes_differ']:>13} "
                     f"{row['sqnr_db']:>10.4f}  {why(row) or '—'}")
    return "\n".join(lines) + "\n"
