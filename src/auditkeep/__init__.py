"""auditkeep: a self-hosted audit log that can prove it was never altered."""

__version__ = "0.1.0"

__all__ = ["__version__"]
