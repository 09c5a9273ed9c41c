"""Sub-commands of ``stream-detect``; each module has ``add_arguments`` and ``run``."""
