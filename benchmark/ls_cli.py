"""``bench ls KIND``: the registered models, metrics, protocols, protocol samplers and frame fits, beside ``dataprep ls``.

Registries are listed through :func:`dataprep.ls_cli.add_listings`; protocols are versioned JSON files,
listed with their description.
"""

from __future__ import annotations

import argparse

from dataprep.cli_app import Commands
from dataprep.ls_cli import add_listings

LISTABLE: dict[str, str] = {
    "models": "benchmark.model:MODELS",
    "metrics": "benchmark.metric:METRICS",
    "samplers": "dataprep.pairs:SAMPLERS",
    "fits": "benchmark.fit:FITS",
}


def _list_protocols(args: argparse.Namespace) -> int:
    from benchmark.protocol import available_protocols, load_protocol

    for protocol_id in available_protocols():
        protocol = load_protocol(protocol_id)
        print(f"{protocol_id}\t{protocol.description}\tprimary={protocol.primary_metric}, inputs={','.join(protocol.inputs)}")
    return 0


def add_commands(commands: Commands) -> None:
    group = add_listings(commands, LISTABLE)
    group.add("protocols", "list the versioned protocols (id, description, primary metric, inputs)", _list_protocols)
