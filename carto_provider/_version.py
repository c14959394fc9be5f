"""The package version, in a module of its own so that every other module can read it without a cycle."""

__version__ = "1.0.0"
