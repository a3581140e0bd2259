"""`zerocarbon devices add | list | revoke | rotate`: the device registry and the broker in step.

A device is a row of the registry (``devices.csv`` of the reference folder: its commune,
family, type, sector and producer) and a client of the MQTT broker's dynamic-security
plugin, with a role of its own that may publish on ``zc/<commune>/<family>/<device id>``
only. The password is generated here, printed once and stored nowhere in clear (the plugin
keeps a salted hash); it is never logged.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reference.device_registry import add_device, check_new_device
from reference.loader import Device, load_reference
from schemas.device_topics import device_topic
from schemas.families import FAMILIES
from schemas.mqtt_principals import DEVICE_ROLE_PREFIX, MqttLogin, device_role, topic_level_problem
from schemas.territory import Sector
from stack.dynamic_security import BrokerClient, DynamicSecurity
from stack.errors import StackError
from stack.secret_files import new_secret

HELP = "add, list, revoke devices, or rotate their secret: the registry and the MQTT broker in step"
DESCRIPTION = """\
Each device has a row in the device registry (devices.csv of ZC_REFERENCE_DIR) and its own
credential on the MQTT broker, allowed to publish on zc/<commune>/<family>/<device id> only
and to subscribe nowhere (docs/security.md).

  add DEVICE_ID --commune INSEE --family F --type T [--sector S] --producer P [--metered-site M]
        write the registry row (into ZC_REFERENCE_DIR, never the shipped data) and create the
        broker client; print its password ONCE. A device already in the registry gets its
        broker client only (the options, if given, must match its row).
  list  every registry row with its broker state: active, revoked or missing (no credential);
        devices the broker knows but the registry does not are listed too.
  revoke DEVICE_ID
        disable the device's credential: its live session is cut at once, its reconnections
        refused. Its registry row stays (its past readings keep their meaning).
  rotate DEVICE_ID [--reinstate]
        a new password, printed once; the old one stops working and a session using it is cut.
        A revoked device comes back only this way, with --reinstate.

Needs the broker's admin credential: the local stack's (`zerocarbon stack up` makes it), or
ZC_MQTT_ADMIN_USERNAME and ZC_MQTT_ADMIN_PASSWORD.
"""


@dataclass(frozen=True, slots=True)
class DevicesConfig:
    """Where the registry and the broker are, and the admin's login (None: not known)."""

    mqtt_host: str
    mqtt_port: int
    admin: MqttLogin | None
    reference_dir: Path
    service_usernames: frozenset[str]  # user names a device may not take
    mqtt_ca_file: Path | None = None  # TLS, trusting this CA


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="register a device and create its broker credential")
    add.add_argument("device_id", metavar="DEVICE_ID")
    add.add_argument("--commune", help="INSEE code of its commune (communes.csv)")
    add.add_argument("--family", help="energy, environment or mobility")
    add.add_argument("--type", dest="device_type", help="device type, e.g. electricity_meter")
    add.add_argument("--sector", help="sector of activity (residential, tertiary...), if any")
    add.add_argument("--producer", help="producer id, e.g. enedis")
    add.add_argument(
        "--metered-site",
        help="a charging point behind a site's own meter: that meter's device id (its electricity "
        "is counted there, not again as EV charging)",
    )
    listing = actions.add_parser("list", help="registry rows with their broker state")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    revoke = actions.add_parser("revoke", help="disable a device's credential, cutting its session")
    revoke.add_argument("device_id", metavar="DEVICE_ID")
    rotate = actions.add_parser("rotate", help="give a device a new password (printed once)")
    rotate.add_argument("device_id", metavar="DEVICE_ID")
    rotate.add_argument(
        "--reinstate", action="store_true", help="also enable a revoked device again (with the new password)"
    )


def run(args: argparse.Namespace, config: DevicesConfig) -> int:
    """Run `zerocarbon devices ACTION`; exit code (2: refused input, 1: broker trouble)."""
    actions = {"add": _add, "list": _list, "revoke": _revoke, "rotate": _rotate}
    try:
        return actions[args.action](args, config)
    except ValueError as exc:
        print(f"zerocarbon devices {args.action}: {exc}", file=sys.stderr)
        return 2
    except StackError as exc:
        print(f"zerocarbon devices {args.action}: {exc}", file=sys.stderr)
        return 1


def _admin(config: DevicesConfig) -> DynamicSecurity:
    if config.admin is None:
        raise StackError(
            "no admin credential for the MQTT broker: on the local stack run `zerocarbon stack up` "
            "(it generates one); for another broker set ZC_MQTT_ADMIN_USERNAME and ZC_MQTT_ADMIN_PASSWORD"
        )
    return DynamicSecurity(config.mqtt_host, config.mqtt_port, config.admin, ca_file=config.mqtt_ca_file)


def _registry(config: DevicesConfig) -> dict[str, Device]:
    return load_reference(config.reference_dir).devices


def _add(args: argparse.Namespace, config: DevicesConfig) -> int:
    device_id = args.device_id
    if device_id in config.service_usernames:
        raise ValueError(f"{device_id!r} is the user name of a service principal: choose another device id")
    known = _registry(config).get(device_id)
    device = _device_from_options(args, known)
    problems = _contract_problems(device)
    if problems:
        raise ValueError(f"device {device_id!r} not added: " + "; ".join(problems))
    if known is None:
        check_new_device(config.reference_dir, device)  # before touching the broker
    secret = new_secret()
    role = device_role(device.commune, device.family, device_id)
    with _admin(config) as dynsec:
        existing = dynsec.get_client(device_id)
        if existing is not None:
            state = "revoked" if existing.get("disabled") else "active"
            raise ValueError(
                f"the broker already has a credential for {device_id!r} ({state}): "
                f"`zerocarbon devices rotate {device_id}` gives it a new password"
            )
        dynsec.ensure_role(role)
        dynsec.create_client(
            MqttLogin(device_id, secret), [role.name], f"device {device.family} {device.commune}"
        )
        if known is None:
            try:
                add_device(config.reference_dir, device)
            except BaseException:
                dynsec.delete_client(device_id)  # neither half without the other, whatever failed
                dynsec.delete_role(role.name)
                raise
    where = "already in" if known is not None else "added to"
    print(f"device {device_id} {where} the registry ({config.reference_dir / 'devices.csv'})")
    _print_secret(device, secret)
    return 0


def _device_from_options(args: argparse.Namespace, known: Device | None) -> Device:
    # option -> (what it gives, the registry field it fills)
    given = {
        "--commune": (args.commune, "commune"),
        "--family": (args.family, "family"),
        "--type": (args.device_type, "device_type"),
        "--sector": (args.sector, "sector"),
        "--producer": (args.producer, "producer_id"),
        "--metered-site": (args.metered_site, "metered_site"),
    }
    if known is not None:
        differing = [
            f"{option} {value!r} (registry: {getattr(known, field) or ''!r})"
            for option, (value, field) in given.items()
            if value is not None and value != (getattr(known, field) or "")
        ]
        if differing:
            raise ValueError(
                f"device {known.device_id!r} is in the registry with other values: {', '.join(differing)}"
            )
        return known
    optional = ("--sector", "--metered-site")
    missing = [option for option, (value, _) in given.items() if not value and option not in optional]
    if missing:
        raise ValueError(f"a new device needs {', '.join(missing)}")
    return Device(
        args.device_id, args.family, args.device_type, args.commune, args.sector or None, args.producer,
        args.metered_site or None,
    )  # fmt: skip


def _contract_problems(device: Device) -> list[str]:
    """A device id fit for a topic level and a user name, a known family and sector."""
    problems = []
    if (problem := topic_level_problem(device.device_id, "device id")) is not None:
        problems.append(problem)
    if device.family not in FAMILIES:
        problems.append(f"unknown family {device.family!r}: one of {', '.join(sorted(FAMILIES))}")
    if device.sector is not None and device.sector not in {s.value for s in Sector}:
        problems.append(f"unknown sector {device.sector!r}: one of {', '.join(s.value for s in Sector)}")
    return problems


def _print_secret(device: Device, secret: str) -> None:
    topic = device_topic(device.commune, device.family, device.device_id)
    print(f"MQTT user name: {device.device_id}")
    print(f"MQTT password:  {secret}")
    print(f"It may publish on {topic} only. The password is shown this once and stored nowhere in clear.")


def _list(args: argparse.Namespace, config: DevicesConfig) -> int:
    registry = _registry(config)
    with _admin(config) as dynsec:
        clients = dynsec.clients()
    rows: list[dict[str, Any]] = [
        {**_row(device), "broker": _state(clients.get(device_id))} for device_id, device in registry.items()
    ]
    for username, client in sorted(clients.items()):
        if username not in registry and any(r.startswith(DEVICE_ROLE_PREFIX) for r in client.roles):
            rows.append({"device_id": username, "registry": "missing", "broker": _state(client)})
    try:
        _print_rows(rows, args.json)
    except BrokenPipeError:  # the reader left (`| head`): stop quietly, as a filter does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def _print_rows(rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        print(json.dumps(rows, indent=2), flush=True)
        return
    columns = ("device_id", "family", "commune", "device_type", "sector", "producer_id", "broker")
    table: list[tuple[str, ...]] = [columns]
    for row in rows:
        cells = tuple(str(row.get(column) or "") for column in columns)
        table.append(cells if "registry" not in row else (cells[0], "(not in the registry)", *cells[2:]))
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    for line in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())
    sys.stdout.flush()


def _row(device: Device) -> dict[str, Any]:
    return {
        "device_id": device.device_id, "family": device.family, "commune": device.commune,
        "device_type": device.device_type, "sector": device.sector, "producer_id": device.producer_id,
    }  # fmt: skip


def _state(client: BrokerClient | None) -> str:
    if client is None:
        return "missing"
    return "revoked" if client.disabled else "active"


def _unknown(device_id: str, config: DevicesConfig) -> ValueError:
    return ValueError(
        f"unknown device {device_id!r}: neither in {config.reference_dir / 'devices.csv'} nor on the broker "
        "(`zerocarbon devices list` shows them)"
    )


def _revoke(args: argparse.Namespace, config: DevicesConfig) -> int:
    device_id = args.device_id
    registered = device_id in _registry(config)
    with _admin(config) as dynsec:
        client = _device_client(dynsec, device_id, config)
        if client is None:
            if not registered:
                raise _unknown(device_id, config)
            raise ValueError(f"device {device_id!r} has no broker credential: nothing to revoke")
        if client.get("disabled"):
            print(f"device {device_id} was already revoked")
            return 0
        dynsec.disable_client(device_id)
    print(f"device {device_id} revoked: its session is cut and its connections refused")
    return 0


def _rotate(args: argparse.Namespace, config: DevicesConfig) -> int:
    device_id = args.device_id
    registry = _registry(config)
    with _admin(config) as dynsec:
        client = _device_client(dynsec, device_id, config)
        if client is None:
            if device_id not in registry:
                raise _unknown(device_id, config)
            raise ValueError(
                f"device {device_id!r} has no broker credential yet: `zerocarbon devices add {device_id}`"
            )
        if client.get("disabled") and not args.reinstate:
            raise ValueError(f"device {device_id!r} is revoked: add --reinstate to enable it again")
        secret = new_secret()
        dynsec.set_password(device_id, secret)  # the plugin cuts a session that used the old one
        if client.get("disabled"):
            dynsec.enable_client(device_id)
    device = registry.get(device_id)
    print(f"device {device_id}: new password{' (reinstated)' if client.get('disabled') else ''}")
    if device is not None:
        _print_secret(device, secret)
    else:
        print(f"MQTT user name: {device_id}\nMQTT password:  {secret}\n(not in the registry: add its row)")
    return 0


def _device_client(dynsec: DynamicSecurity, device_id: str, config: DevicesConfig) -> dict[str, Any] | None:
    """The broker's client of a device; ValueError for a service principal's user name."""
    if device_id in config.service_usernames:
        raise ValueError(f"{device_id!r} is a service principal, not a device")
    return dynsec.get_client(device_id)
