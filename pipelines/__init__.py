"""Model Atlas: validate the curated CSV tables and compile them into releases."""

__version__ = "0.1.0"
