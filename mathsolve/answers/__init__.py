"""Answers: extract the final answer, compare answers, check them with sympy, vote."""
