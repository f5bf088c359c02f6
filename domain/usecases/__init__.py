"""The change use cases, one module per feature; `domain/service.py` is their one facade."""
