"""GAN core: networks, losses, DiffAugment, EMA, checkpoints, training loop and sampling (Dagster-free)."""
