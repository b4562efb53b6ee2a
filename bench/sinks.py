"""API calls and seconds for the Sheets and Airtable sinks, beside the lower bound of calls.

    python -m bench.sinks                 # both; Airtable at its real 5 requests/s (about 2 minutes)
    python -m bench.sinks --rps 50        # Airtable paced faster: same call counts, fewer seconds

Each half is also runnable on its own: `python -m bench.sinks_sheets`, `python -m bench.sinks_airtable`.
Exit 1 when a case makes more calls than the bound.
"""

from __future__ import annotations

import argparse
import sys

from bench import sinks_airtable, sinks_sheets


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000, help="Sheets rows (20 columns)")
    parser.add_argument("--records", type=int, default=5_000, help="Airtable records")
    parser.add_argument("--rps", type=int, default=5, help="Airtable requests/s per base")
    args = parser.parse_args()
    sheets = sinks_sheets.main(["--rows", str(args.rows)])
    airtable = sinks_airtable.main(["--records", str(args.records), "--rps", str(args.rps)])
    return 1 if sheets or airtable else 0


if __name__ == "__main__":
    sys.exit(main())
