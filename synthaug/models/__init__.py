"""Stage 4: the feature extractor and GAN stages, their networks, training loop and metrics."""
