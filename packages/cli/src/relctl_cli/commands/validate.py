"""`relctl validate`: check an experiment file and show what it would run."""

from __future__ import annotations

from pathlib import Path

import click

from relctl_cli.render import console, emit_json, table


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the resolved spec as JSON.")
def validate(file: Path, as_json: bool) -> None:
    """Check an experiment file and print the resolved spec and its runs.

    \b
    Example:
      relctl validate experiment.yaml
    """
    import yaml
    from relctl_core.experiments import prepare

    prepared = prepare(file)
    runs = [{"name": r.name, "task": r.task, "kind": r.kind} for r in prepared.plan.runs]
    stages: dict[str, int] = {}
    for stage in prepared.plan.stages.values():
        stages[stage.kind] = stages.get(stage.kind, 0) + 1
    if as_json:
        emit_json({"spec": prepared.spec, "runs": runs, "stages": stages})
        return
    console.print(yaml.safe_dump(prepared.spec, sort_keys=False, allow_unicode=True), highlight=False, markup=False)
    console.print(table(f"{len(runs)} runs", ["run", "task", "kind"], [[r["name"], r["task"], r["kind"]] for r in runs]))
    console.print("stages: " + ", ".join(f"{n} {k}" for k, n in stages.items()))
    console.print(f"[green]ok[/] {file}")
