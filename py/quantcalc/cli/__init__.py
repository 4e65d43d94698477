"""`python -m quantcalc analyze | compare | scan | plan`: argument parsing, terminal tables and
the files each subcommand writes. Every subcommand calls `quantcalc.api` for its numbers.
"""
