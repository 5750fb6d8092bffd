"""Subcommands of the ``astrokit`` command for astrokit.widgets (registered by astrokit.cli)."""

__all__ = ["register"]


def register(subparsers, with_store):
    """Add this topic's subcommands to the ``astrokit`` parser.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The parser's subcommands.
    with_store : callable
        Adds the standard ``--store`` option to a subparser and returns it.
    """
