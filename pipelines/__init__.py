"""The Dagster code location: definitions, jobs, sensors and the `synthaug` command line."""
