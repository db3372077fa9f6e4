"""OPA-centric AI gateway."""

__version__ = "0.1.0"
