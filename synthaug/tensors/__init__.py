"""Stage 3: clean images to split, augmented, normalized uint8 shards, and the loader that reads them."""
