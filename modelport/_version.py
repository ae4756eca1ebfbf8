"""The package's version: a leaf that the package root and the server both import."""

__all__ = ["__version__"]

__version__ = "0.1.0"
