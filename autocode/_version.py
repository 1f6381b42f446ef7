"""The version of autocode, in one place: the package, saved models and reports read it from here."""

__version__ = "0.2.0.dev0"
