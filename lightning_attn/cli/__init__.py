"""``lightning-attn``: the command line.

    lightning-attn train [group=choice ...] [dotted.key=value ...]
    lightning-attn train --print-config attention=hard     # show the composed config, train nothing
    lightning-attn train --resume RUN_ID [dotted.key=value ...]   # continue a stopped run where it ended
    lightning-attn evaluate RUN_ID [split=NAME | src=FILE ref=FILE] [dotted.key=value ...]
    lightning-attn config                                  # the groups and their choices
    lightning-attn sweep FILE [--devices …] [--storage URL] [--resume | --join]
    lightning-attn compare attention=soft,hard seeds=0-4 [--devices …] [--resume]   # no tuning
    lightning-attn report | ui | server                    # compare; look; host MLflow for several hosts

Exit codes (the table in docs/training.md): 0 done; 1 failed (a run failed, no seed or no trial completed, a sweep
ended with budget left, nothing to report); 2 bad input — an unknown key or choice, a wrong type, missing
or malformed data, a device this machine does not have — one ``error:`` line, before anything is
written; 3 an MLflow store or Optuna storage that cannot be reached, one line naming it (password
masked); 128 + the signal number when a signal stopped the command.
"""

from __future__ import annotations

import sys

from .. import console
from ..config import ConfigError
from ..plugins import load_plugins
from ..processes import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_UNREACHABLE
from ..tracking import mask_secrets
from .parser import build_parser

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILED", "EXIT_UNREACHABLE", "build_parser", "main"]


def main(argv: list[str] | None = None) -> int:
    console.mask_output()  # before anything is printed, by us or by a library
    parser = build_parser()
    # key=value overrides may also come after the options (argparse alone refuses that order)
    args, extra = parser.parse_known_args(argv)
    if extra and (not hasattr(args, "overrides") or any(item.startswith("-") for item in extra)):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    console.setup()
    try:
        load_plugins()
        return args.func(args)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ConnectionError as e:  # an MLflow store or Optuna storage that cannot be reached: said in one line
        print(f"error: {mask_secrets(str(e))}", file=sys.stderr)
        return EXIT_UNREACHABLE


if __name__ == "__main__":
    sys.exit(main())
