"""weightzoo: train populations of small networks and characterise their learnable parameters."""

__version__ = "0.1.0"
