"""Stage 1: landed batches to decoded, validated, content-addressed raw images with a manifest."""
