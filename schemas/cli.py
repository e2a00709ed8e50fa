"""``playlog schemas check|register|list``: the local registry and its compatibility check."""

from __future__ import annotations

import sys

import click

from schemas.registry import Registry, check, load_avsc_dir, register


@click.group("schemas")
def schemas_group() -> None:
    """The local schema registry (schemas/avro/*.avsc + schemas/registry.json)."""


@schemas_group.command("check")
def schemas_check() -> None:
    """Fail (exit 1) when a working schema would break readers of data already written."""
    problems = check(Registry.load(), load_avsc_dir())
    for p in problems:
        click.echo(p, err=True)
    if problems:
        sys.exit(1)
    click.echo("schemas compatible with every registered version")


@schemas_group.command("register")
def schemas_register() -> None:
    """Give every changed (and compatible) schema a new version with a new stable id."""
    reg = Registry.load()
    working = load_avsc_dir()
    problems = check(reg, working)
    if problems:
        for p in problems:
            click.echo(p, err=True)
        sys.exit(1)
    new, added = register(reg, working)
    new.save()
    for v in added:
        click.echo(f"registered {v.event_type} version {v.version} as id {v.id}")
    if not added:
        click.echo("nothing to register")


@schemas_group.command("list")
def schemas_list() -> None:
    """Event types with their latest schema id and record name."""
    reg = Registry.load()
    for t in reg.event_types:
        v = reg.latest(t)
        click.echo(f"{v.id:4} {t:28} {v.fullname} v{v.version}")
