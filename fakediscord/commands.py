"""Turn ``"credits grant"`` + ``{"member": 1, "amount": "50"}`` into an interaction's ``data``.

Option types come from the commands the bot synced, so the payload nests and types
exactly as Discord's client would send it. What Discord's client would refuse to send
(unknown command, missing required option, a value outside its choices or limits ...)
raises :class:`InvalidInvocation` instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

SUB_COMMAND = 1
SUB_COMMAND_GROUP = 2
STRING = 3
INTEGER = 4
BOOLEAN = 5
USER = 6
CHANNEL = 7
ROLE = 8
MENTIONABLE = 9
NUMBER = 10
ATTACHMENT = 11

#: ``resolve(option_type, value) -> (snowflake string, {"users": {...}, "members": {...}})``
Resolver = Callable[[int, Any], tuple[str, dict[str, dict[str, Any]]]]


class InvalidInvocation(ValueError):
    """Discord's client would not let a user send this interaction."""


def find_command(candidates: Sequence[dict[str, Any]], name: str) -> dict[str, Any]:
    for command in candidates:
        if command["name"] == name and command.get("type", 1) == 1:
            return command
    known = sorted({c["name"] for c in candidates if c.get("type", 1) == 1})
    raise InvalidInvocation(f"no synced slash command {name!r}; synced: {known}")


def build_data(
    command: dict[str, Any],
    path: Sequence[str],
    options: Mapping[str, Any],
    *,
    resolve: Resolver,
    focused: str | None = None,
) -> dict[str, Any]:
    """The ``data`` of an APPLICATION_COMMAND (or, with ``focused``, AUTOCOMPLETE) interaction.

    ``path`` is the command path after the top-level name, e.g. ``["grant"]``.
    """
    resolved: dict[str, dict[str, Any]] = {}
    definitions: list[dict[str, Any]] = command.get("options") or []
    wrappers: list[dict[str, Any]] = []
    qualified = command["name"]
    for part in path:
        sub = next(
            (o for o in definitions if o["name"] == part and o["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP)),
            None,
        )
        if sub is None:
            names = [o["name"] for o in definitions if o["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP)]
            raise InvalidInvocation(f"/{qualified} has no subcommand {part!r}; it has {names}")
        wrappers.append({"type": sub["type"], "name": sub["name"]})
        definitions = sub.get("options") or []
        qualified += f" {part}"
    subs = [o["name"] for o in definitions if o["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP)]
    if subs:
        raise InvalidInvocation(f"/{qualified} needs a subcommand: {subs}")

    leaf = _leaf_options(qualified, definitions, options, resolve, resolved, focused)
    nested: list[dict[str, Any]] = leaf
    for wrapper in reversed(wrappers):
        nested = [{**wrapper, "options": nested}]

    data: dict[str, Any] = {
        "id": command["id"],
        "name": command["name"],
        "type": 1,
        "options": nested,
    }
    if resolved:
        data["resolved"] = resolved
    if command.get("guild_id"):
        data["guild_id"] = command["guild_id"]
    return data


def _leaf_options(
    qualified: str,
    definitions: list[dict[str, Any]],
    options: Mapping[str, Any],
    resolve: Resolver,
    resolved: dict[str, dict[str, Any]],
    focused: str | None,
) -> list[dict[str, Any]]:
    by_name = {d["name"]: d for d in definitions}
    for name in options:
        if name not in by_name:
            raise InvalidInvocation(f"/{qualified} has no option {name!r}; it has {list(by_name)}")
    if focused is not None:
        if focused not in by_name:
            raise InvalidInvocation(f"/{qualified} has no option {focused!r} to focus")
        if not by_name[focused].get("autocomplete"):
            raise InvalidInvocation(f"/{qualified} option {focused!r} has no autocomplete")
    else:
        missing = [d["name"] for d in definitions if d.get("required") and d["name"] not in options]
        if missing:
            raise InvalidInvocation(f"/{qualified} is missing required options {missing}")

    result: list[dict[str, Any]] = []
    names = list(options)
    if focused is not None and focused not in options:
        names.append(focused)
    for name in names:
        definition = by_name[name]
        if name == focused:
            typed = options.get(name, "")
            result.append({"type": definition["type"], "name": name, "value": str(typed), "focused": True})
            continue
        value = _convert(qualified, definition, options[name], resolve, resolved)
        result.append({"type": definition["type"], "name": name, "value": value})
    return result


def _convert(
    qualified: str,
    definition: dict[str, Any],
    raw: Any,
    resolve: Resolver,
    resolved: dict[str, dict[str, Any]],
) -> Any:
    kind = definition["type"]
    where = f"/{qualified} {definition['name']}"
    value: Any
    try:
        if kind == STRING:
            value = str(raw)
        elif kind == INTEGER:
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError(raw)
            value = int(raw)
        elif kind == NUMBER:
            value = float(raw)
        elif kind == BOOLEAN:
            value = _boolean(raw)
        else:
            snowflake, extra = resolve(kind, raw)
            for section, entries in extra.items():
                resolved.setdefault(section, {}).update(entries)
            return snowflake
    except (TypeError, ValueError) as exc:
        raise InvalidInvocation(f"{where}: {raw!r} is not a valid {_TYPE_NAMES[kind]}") from exc

    choices = definition.get("choices")
    if choices and value not in [c["value"] for c in choices]:
        raise InvalidInvocation(f"{where}: {value!r} is not one of {[c['value'] for c in choices]}")
    if kind in (INTEGER, NUMBER):
        low, high = definition.get("min_value"), definition.get("max_value")
        if (low is not None and value < low) or (high is not None and value > high):
            raise InvalidInvocation(f"{where}: {value} is outside [{low}, {high}]")
    if kind == STRING:
        low, high = definition.get("min_length"), definition.get("max_length")
        if (low is not None and len(value) < low) or (high is not None and len(value) > high):
            raise InvalidInvocation(f"{where}: length {len(value)} is outside [{low}, {high}]")
    return value


def _boolean(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise ValueError(raw)


_TYPE_NAMES = {
    STRING: "string",
    INTEGER: "integer",
    BOOLEAN: "boolean",
    USER: "user",
    CHANNEL: "channel",
    ROLE: "role",
    MENTIONABLE: "mentionable",
    NUMBER: "number",
    ATTACHMENT: "attachment",
}
