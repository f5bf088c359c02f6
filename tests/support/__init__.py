"""Helpers the tests share that are not fixtures (those stay in tests/conftest.py).

Imported as `tests.support.<module>`: pytest puts the checkout root on the path (the
`pythonpath` option in pyproject.toml).
"""
