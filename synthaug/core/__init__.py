"""Shared plumbing of every stage: atomic writes, locks, the data layout, settings, hashes, progress,
worker processes, packs, manifests and pictures."""
