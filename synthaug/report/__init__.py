"""Stage 6: does the synthetic set help a classifier beyond classic augmentation?

`data` loads what the arms train and test on, `arms` trains them, `stats` gives the t intervals and the paired gain,
`verdict` decides on the validation split, `build` assembles the `AugmentationReport`, `pictures` draws its plots and
`write` puts them and `report.json` on disk."""
