"""Stage 6: does the synthetic set help a classifier beyond classic augmentation?"""
