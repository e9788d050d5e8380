"""synthaug core: Dagster-free library for cleaning images, training GANs and measuring synthetic data."""

__version__ = "0.1.0"
