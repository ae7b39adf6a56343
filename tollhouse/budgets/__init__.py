"""Budgets per project (daily, monthly; soft or hard) and negotiated provider deals.

One module per concept: ``book`` (periods, holds), ``bound`` (a request's worst
case), ``gate`` (the request path's check), ``shared`` (through Postgres),
``commitments`` (deals). Import from them; this package runs nothing on import,
so the config (settings.py) can read the budget modes from ``book``.
"""
