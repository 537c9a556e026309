"""Sub-commands of ``bayesvae``: each module has ``add_parser(subparsers)``, which sets ``run(args)``."""
