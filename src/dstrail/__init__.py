"""dstrail: a data source service with a complete, verifiable audit trail."""

__version__ = "0.1.0"
__all__ = ["__version__"]
