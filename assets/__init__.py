"""Software-defined assets, one module per stage; each is thin and calls into the synthaug core."""
