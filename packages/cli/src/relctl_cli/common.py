"""What several commands share: the settings a command needs, checked, and an experiment by id."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from relctl_core.errors import InputError
from relctl_core.settings import Settings, load_settings
from relctl_core.states import CANCELLED, DONE, FAILED

if TYPE_CHECKING:
    from relctl_core.db import Experiment, Stage

TERMINAL = (DONE, FAILED, CANCELLED)


def settings_with_schema() -> Settings:
    """Settings for a command that talks to the workers: the broker and the run database must answer."""
    from relctl_core.experiments import check_services

    settings = load_settings()
    check_services(settings)
    return settings


def experiment_or_fail(session: Any, experiment_id: int) -> Experiment:
    from relctl_core.db import Experiment

    experiment = session.get(Experiment, experiment_id)
    if experiment is None:
        raise InputError(f"no experiment {experiment_id} (see `relctl list`)")
    return experiment


def experiment_with_stages(session: Any, experiment_id: int) -> tuple[Experiment, list[Stage]]:
    from relctl_core.db import Stage
    from sqlalchemy import select

    experiment = experiment_or_fail(session, experiment_id)
    return experiment, list(session.scalars(select(Stage).where(Stage.experiment_id == experiment_id).order_by(Stage.id)))
