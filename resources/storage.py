"""Where data lives: the data root (all outputs) and the landing folder (where users drop batches)."""

from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field

from synthaug.core.layout import DataLayout
from synthaug.core.settings import DEFAULT_QUIET_PERIOD_S


class StorageResource(ConfigurableResource):
    """The data root under which every stage writes its outputs."""

    data_root: str = Field(description="Folder for all outputs (SYNTHAUG_DATA_ROOT).")

    def layout(self) -> DataLayout:
        """Paths of every stage's outputs under the data root."""
        return DataLayout(Path(self.data_root).absolute())


class LandingResource(ConfigurableResource):
    """The landing folder and the rule that says when a batch in it is complete."""

    landing_dir: str = Field(description="Folder users drop batches into (SYNTHAUG_LANDING_DIR).")
    quiet_period_seconds: float = Field(
        default=DEFAULT_QUIET_PERIOD_S,
        description="A batch without a _READY file counts as complete once unchanged this long.",
    )

    @property
    def path(self) -> Path:
        return Path(self.landing_dir).absolute()
