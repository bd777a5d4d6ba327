"""Dagster definitions, one role per module: partitions, resources, assets, checks, jobs,
sensors, schedules. :func:`biosigio_pipeline.definitions.build_defs` assembles them."""
