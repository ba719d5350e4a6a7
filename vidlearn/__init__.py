"""vidlearn: an auto-graded notebook course on attention for video."""

__version__ = "0.1.0"
