"""docker-compose.yml read the way Compose reads it (YAML merge keys, `${VAR:-default}`
interpolation, `$$`), validated against the Compose Specification schema that check-jsonschema ships,
and turned into local processes: service host names and container ports mapped to this machine's."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import jsonschema
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
_VARIABLE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def load_yaml(path: Path) -> dict:
    return YAML(typ="safe").load(path.read_text())


def schema_errors(document: dict) -> list[str]:
    """Every violation of the Compose Specification (the schema vendored in check-jsonschema)."""
    schema_file = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    validator = jsonschema.Draft202012Validator(json.loads(schema_file.read_text()))
    return [f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in validator.iter_errors(document)]


def interpolate(value: object, variables: dict[str, str]) -> object:
    """Compose's interpolation over every string of the document; `$$` becomes a literal `$`."""
    if isinstance(value, dict):
        return {key: interpolate(item, variables) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, variables) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1) or match.group(4)
        operator, argument = match.group(2), match.group(3) or ""
        current = variables.get(name)
        unset = current is None or (operator in (":-", ":?") and current == "")
        if operator in ("-", ":-"):
            return argument if unset else current
        if operator in ("?", ":?") and unset:
            raise ValueError(f"{name}: {argument}")
        return current or ""

    return _VARIABLE.sub(substitute, value)


@dataclass
class LocalService:
    """One application service as a local process: argv, environment, and its health check's argv."""

    name: str
    argv: list[str]
    env: dict[str, str]
    healthcheck: list[str] | None
    ports: dict[int, int] = field(default_factory=dict)  # container port -> local port


def application_services(document: dict) -> dict[str, dict]:
    """The services built from this repository (the rest are infrastructure images)."""
    return {name: spec for name, spec in document["services"].items() if "build" in spec}


def command_argv(command: str | list[str]) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else list(command)


def healthcheck_argv(spec: dict) -> list[str] | None:
    test = (spec.get("healthcheck") or {}).get("test")
    if not test or test[0] == "NONE":
        return None
    if isinstance(test, str):
        return ["sh", "-c", test]
    if test[0] == "CMD-SHELL":
        return ["sh", "-c", " ".join(test[1:])]
    return list(test[1:]) if test[0] == "CMD" else list(test)


def local_service(name: str, spec: dict, addresses: dict[str, str], paths: dict[str, str],
                  ports: dict[int, int], base_env: dict[str, str], overrides: dict[str, str]) -> LocalService:
    """`addresses` maps host:port of the compose network to local ones, `paths` container paths to
    local ones, `ports` the ports the service listens on to free local ports."""

    def localize(text: str) -> str:
        for old, new in (*addresses.items(), *paths.items()):
            text = text.replace(old, new)
        for container, local in ports.items():
            text = re.sub(rf"(?<=[:=]){container}\b", str(local), text)
        return text

    env = {key: localize(str(value)) for key, value in (spec.get("environment") or {}).items()}
    if "KAFKA_BOOTSTRAP_SERVERS" in env:  # three brokers, one local stand-in
        env["KAFKA_BOOTSTRAP_SERVERS"] = ",".join(dict.fromkeys(env["KAFKA_BOOTSTRAP_SERVERS"].split(",")))
    if env.get("METRICS_PORT", "").isdigit():
        env["METRICS_PORT"] = str(ports.get(int(env["METRICS_PORT"]), env["METRICS_PORT"]))
    env = {**base_env, **env, **overrides}
    argv = [localize(part) for part in command_argv(spec["command"])]
    check = healthcheck_argv(spec)
    return LocalService(name, argv, env, [localize(part) for part in check] if check else None, ports)
