"""Partitions shared by the per-batch assets: one dynamic partition per landed batch."""

from dagster import DynamicPartitionsDefinition

BATCHES = "batches"
batch_partitions = DynamicPartitionsDefinition(name=BATCHES)
