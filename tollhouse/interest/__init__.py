"""Principal and interest: what AI spend bought, and what it cost again later.

:mod:`~tollhouse.interest.account` holds the definitions (sans-io),
:mod:`~tollhouse.interest.history` reads git, :mod:`~tollhouse.interest.spend`
the ledger; :mod:`~tollhouse.interest.report` puts them together for the CLI
(``tollhouse interest``) and the dashboard.
"""
