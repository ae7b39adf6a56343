"""Budgets per project (daily, monthly; soft or hard) and negotiated provider deals."""

from tollhouse.budgets.book import Budget, BudgetBook, Hold
from tollhouse.budgets.gate import BudgetGate

__all__ = ["Budget", "BudgetBook", "BudgetGate", "Hold"]
