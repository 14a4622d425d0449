"""mmsd: the Meeting Migration Service daemon."""

__version__ = "0.1.0"
