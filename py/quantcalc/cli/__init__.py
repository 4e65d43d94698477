"""`python -m quantcalc analyze | compare | scan | plan`: argument parsing, terminal tables and
the files each subcommand writes. Every subcommand calls `quantcalc.api` for its work.

    main       the parser, argument fix-ups and exit statuses
    inputs     what analyze and compare read (file, --values, stdin) and --preset
    outputs    report options from reports/exports.py, every output path checked before any
               work, reports written whole to PATH or to stdout (-), and the facade's error
               dicts as one-line messages
    interrupts Ctrl-C during a scan: the first stops it, later ones wait for its reports
    analyze, compare, scan, plan   one module per subcommand
"""
