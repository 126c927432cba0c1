"""The ``gridshift`` command line, on Click: one module per command group, in the order of the tree.

    gridshift crd                              crd.py
    gridshift demo                             demo.py
    gridshift dev cluster build|down|status|up dev.py
    gridshift dev battery | dev twin           dev.py
    gridshift feasibility                      feasibility.py
    gridshift forecast train|evaluate|plot     forecast.py
    gridshift operator run                     operator.py
    gridshift sim migration | simulate         sim.py

Exit codes (``common``): 0 done, 1 the work failed (``gridshift: <why>`` on stderr), 2 the command line
is wrong (the option named); ``feasibility``: 0 feasible, 1 not feasible, 2 an error. Shell completion:
``eval "$(_GRIDSHIFT_COMPLETE=bash_source gridshift)"`` (or ``zsh_source``, ``fish_source``).
"""

from __future__ import annotations

import click

from gridshift import __version__
from gridshift.cli.common import Failed
from gridshift.cli.crd import crd
from gridshift.cli.demo import demo
from gridshift.cli.dev import dev
from gridshift.cli.feasibility import feasibility
from gridshift.cli.forecast import forecast
from gridshift.cli.operator import operator
from gridshift.cli.sim import sim, simulate

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 110}


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, prog_name="gridshift", message="%(prog)s %(version)s")
def cli() -> None:
    """Keep an AI data center inside its power budget."""


for command in (crd, demo, dev, feasibility, forecast, operator, sim, simulate):
    cli.add_command(command)


def main(argv: list[str] | None = None) -> int:
    """Run the command line on ``argv`` (default: the process's) and return its exit code."""
    try:
        result = cli.main(args=argv, prog_name="gridshift", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("Aborted!", err=True)
        return 1
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing.startswith("gridshift.devcluster") or missing.split(".")[0] == "cryptography":
            Failed("the developer tools are not in this installation (the operator image leaves them out): install "
                   "gridshift from a source checkout with pip install '.[devcluster]'").show()
            return 1
        raise
    return result if isinstance(result, int) else 0
