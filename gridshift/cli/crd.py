"""``gridshift crd``: the CustomResourceDefinitions and the API reference, generated from the API types."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command()
@click.option("--write", metavar="DIR", type=click.Path(file_okay=False),
              help="Write one YAML file per CRD into DIR instead of printing.")
@click.option("--reference", metavar="FILE", type=click.Path(dir_okay=False),
              help="Write the API reference page (Markdown) to FILE.")
def crd(write: str | None, reference: str | None) -> None:
    """Print the CustomResourceDefinitions generated from the API types."""
    from gridshift.api.crd import all_crds, render_yaml
    from gridshift.api.reference import api_reference

    docs = [render_yaml(c) for c in all_crds()]
    if reference:
        Path(reference).parent.mkdir(parents=True, exist_ok=True)
        Path(reference).write_text(api_reference(all_crds()))
        print(f"wrote {reference}")
    if write:
        out = Path(write)
        out.mkdir(parents=True, exist_ok=True)
        for definition, text in zip(all_crds(), docs, strict=True):
            path = out / f"{definition['metadata']['name']}.yaml"
            path.write_text(text)
            print(f"wrote {path}")
    elif not reference:
        sys.stdout.write("---\n".join(docs))
