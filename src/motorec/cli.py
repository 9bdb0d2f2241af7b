"""The `motorec` command line: one Typer app, each command group in motorec.commands.*."""

from __future__ import annotations

import importlib
import sys
import textwrap

import typer

from motorec.errors import MotorecError

app = typer.Typer(
    name="motorec",
    help="Cold-start recommendation through multimodal semantic tokens.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Each module defines register(app); listed here so import order (and help order) is explicit.
# Product commands sit at the top level; experiments (tables, ablations, searches) under `motorec exp`.
COMMAND_MODULES = [
    "motorec.commands.core",
    "motorec.commands.tokenize",
    "motorec.commands.features",
    "motorec.commands.serve",
    "motorec.commands.report",
    "motorec.commands.explain",
]
EXPERIMENT_MODULES = [
    "motorec.commands.zoo",
    "motorec.commands.ablate",
    "motorec.commands.tradeoff",
    "motorec.commands.motor",
    "motorec.commands.generative",
]

exp_app = typer.Typer(
    help="Experiments: comparisons, tuning, ablations and other tables from the docs.", no_args_is_help=True
)
for _module in COMMAND_MODULES:
    importlib.import_module(_module).register(app)
for _module in EXPERIMENT_MODULES:
    importlib.import_module(_module).register(exp_app)
app.add_typer(exp_app, name="exp")


INVOCATION: list[str] = []  # this process's command line after `motorec` (what --nproc relaunches)


def relaunch_under_torchrun(nproc: int) -> bool:
    """With --nproc N > 1 outside torchrun: run this same command under `torchrun --nproc_per_node N`
    and return True (the caller then stops); otherwise False (run here, perhaps as one rank)."""
    from motorec.distributed import launched_by_torchrun, run_torchrun

    if nproc < 1:
        raise MotorecError(f"--nproc {nproc}: give at least 1 process.")
    if nproc == 1 or launched_by_torchrun():
        return False
    args, skip = [], False
    for arg in INVOCATION or sys.argv[1:]:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            args.append(arg)
    run_torchrun(nproc, args)
    return True


def main(argv: list[str] | None = None) -> int:
    """Entry point: user errors become one paragraph on stderr and exit code 2, no traceback."""
    INVOCATION[:] = list(sys.argv[1:] if argv is None else argv)
    try:
        # Non-standalone typer returns the code of an Exit it caught (130 on Ctrl-C) instead of raising.
        code = app(args=argv, standalone_mode=False)
    except MotorecError as exc:
        msg = textwrap.fill(str(exc), width=100, break_on_hyphens=False) if "\n" not in str(exc) else str(exc)
        print(f"error: {msg}", file=sys.stderr)
        return 2
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        print("aborted", file=sys.stderr)
        return 1
    except Exception as exc:
        # Usage errors are ClickExceptions of the click that typer vendors (typer._click), not of
        # the `click` package, so they are recognised by their interface.
        show = getattr(exc, "show", None)
        if callable(show) and isinstance(getattr(exc, "exit_code", None), int):
            show()
            return 2
        raise
    if code == 130:
        print("interrupted", file=sys.stderr)
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
