"""Zero-carbon territory ingestion service: the command line and the shared settings."""

__version__ = "0.1.0"
