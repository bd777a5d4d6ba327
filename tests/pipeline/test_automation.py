"""Declarative automation on the store: new serving parameters (the store's code version)
request exactly the stores that were built, once; missing ones are left to the sensor."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from biosigio_lib.serving import ServingParams
from biosigio_pipeline.definitions import build_defs
from biosigio_pipeline.defs.automation import AUTOMATION_SENSOR

from .conftest import requires_serving

pytestmark = requires_serving
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
STORE = dg.AssetKey("zarr_store")
BUILT = ["wfdb_demo__ecg01", "xdf_demo__session01_xdf"]
MISSING = "bids_demo__sub-01_task-rest_eeg"


def test_new_serving_params_request_the_built_stores_once(
        source_copy: Path, tmp_path: Path, instance: dg.DagsterInstance) -> None:
    params_a = ServingParams()
    params_b = ServingParams.from_dict({**params_a.to_dict(), "chunk_seconds": 2.0})
    common = {"storage_root": str(tmp_path / "out"), "source_roots": [str(source_copy)]}
    defs_a = build_defs(serving_params=params_a, **common)
    defs_b = build_defs(serving_params=params_b, **common)
    sensor = defs_a.resolve_sensor_def(AUTOMATION_SENSOR)
    assert isinstance(sensor, dg.AutomationConditionSensorDefinition)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    instance.add_dynamic_partitions("recordings", [*BUILT, MISSING])
    for key in BUILT:
        assert defs_a.resolve_job_def("convert_recording").execute_in_process(
            partition_key=key, instance=instance, run_config=QUIET).success

    selection = dg.AssetSelection.assets(STORE)
    first = dg.evaluate_automation_conditions(defs=defs_a, instance=instance,
                                              asset_selection=selection)
    assert first.total_requested == 0  # the first evaluation only notes the code version
    same = dg.evaluate_automation_conditions(defs=defs_a, instance=instance,
                                             asset_selection=selection, cursor=first.cursor)
    assert same.total_requested == 0
    changed = dg.evaluate_automation_conditions(defs=defs_b, instance=instance,
                                                asset_selection=selection, cursor=same.cursor)
    assert changed.get_requested_partitions(STORE) == set(BUILT)  # not the missing one
    again = dg.evaluate_automation_conditions(defs=defs_b, instance=instance,
                                              asset_selection=selection, cursor=changed.cursor)
    assert again.total_requested == 0  # requested once: handled
