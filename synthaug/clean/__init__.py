"""Stage 2: quality scores, duplicate search and the keep-or-remove decision for every raw image."""
