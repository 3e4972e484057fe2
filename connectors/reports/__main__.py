"""`python -m connectors.reports html --database DB --output FILE ...`: write the HTML report in a process of
its own and print {path, model, bytes, charts} as JSON.

The nightly flow calls this rather than rendering in its own process: the chart renderer embeds a JavaScript
engine whose threads outlive the render and, inside a Prefect flow process, delayed Prefect's log shipping at
exit. A child process keeps the flow process as it was, and its memory is given back when it ends.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import duckdb

from connectors.reports import write_html_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m connectors.reports", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    html = commands.add_parser("html", help="write the HTML report")
    html.add_argument("--database", type=Path, required=True)
    html.add_argument("--output", type=Path, required=True)
    html.add_argument("--language", default="fr")
    html.add_argument("--model")
    html.add_argument("--publish-model")
    html.add_argument("--notice")
    args = parser.parse_args(argv)
    con = duckdb.connect(str(args.database), read_only=True)
    try:
        result = write_html_report(
            con,
            args.output,
            model=args.model,
            language=args.language,
            publish_model=args.publish_model,
            notice=args.notice,
        )
    finally:
        con.close()
    print(
        json.dumps(
            {"path": str(result.path), "model": result.model, "bytes": result.bytes, "charts": result.charts}
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
