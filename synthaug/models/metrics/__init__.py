"""Quality metrics for generated images, in the feature space of a classifier trained on real data (no pretrained
Inception weights here): FID and KID, k-NN precision/recall, and the classification accuracy score (CAS), each
reported next to the real-vs-real floor at the same sample size."""
