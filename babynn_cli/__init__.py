"""babynn: train models by gradient descent from the command line."""

__version__ = "0.1.0"
