import sys

from quantcalc.cli.main import main

sys.exit(main())
