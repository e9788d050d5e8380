"""Stage 5: per-class synthetic samples from the latest checkpoint, filtered, as an ImageFolder tree."""
