"""`make demo`: the agent, the simulator, a broker and the cloud stand-in on one laptop.

Demo-only code (never installed): ``python -m edge_demo`` with ``scripts/`` on ``PYTHONPATH``.
``scripts/demo.py`` is the entry point ``make demo`` runs.
"""
