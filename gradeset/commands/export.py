"""``gradeset export IN OUT --to LAYOUT``: ``convert`` with the layout spelled out.

For trainer hand-off scripts that read better as "export to verl/sharegpt/alpaca".
"""

from __future__ import annotations

import argparse

from gradeset.commands.convert import add_convert_args, convert


def register(sub) -> None:
    p = sub.add_parser("export", help="write groups in a trainer layout (convert with a required --to)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_convert_args(p, to_required=True)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return convert(args, name="export")
