"""Refuse what Discord refuses: every REST request body checked against Discord's own OpenAPI
description of API v10 (``discord_api_spec/openapi.json``, MIT, copied unchanged from
discord/discord-api-spec), plus the documented limits the schema cannot express.

A violation is answered as Discord answers it: 400, code 50035 "Invalid Form Body", with the
nested ``errors`` object (``{"embeds": {"0": {"description": {"_errors": [...]}}}}``).

Two deliberate tightenings of the published schema, both as Discord documents its API:

- Objects are closed: a field the schema does not name is refused (``UNKNOWN_FIELD``). Discord
  silently drops most unknown fields, which hides typos such as ``ephemral``; a fake that refuses
  them finds those bugs.
- Message ``content`` is 2,000 characters, as documented for bots (the schema says 4,000 for
  ``POST /channels/{id}/messages``, which only Nitro users' own messages get).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any, cast

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

#: Package data: found wherever the package is installed (a wheel, an editable install, a zip).
SPEC_DIR: Traversable = files(__package__ or "fakediscord") / "discord_api_spec"
SPEC_URI = "urn:discord-api-spec:openapi.json"

# Documented limits (discord.com/developers/docs) that the schema does not carry.
CONTENT_MAX = 2000
EMBEDS_TOTAL_MAX = 6000
ACTION_ROWS_MAX = 5
BUTTONS_PER_ROW_MAX = 5
ATTACHMENTS_MAX = 10
COMMAND_TOTAL_MAX = 8000
OPTIONS_PER_LEVEL_MAX = 25
CHOICES_MAX = 25
CHOICE_NAME_MAX = 100
CHOICE_VALUE_MAX = 100
IS_COMPONENTS_V2 = 1 << 15
CHAT_INPUT = 1
SUB_COMMAND, SUB_COMMAND_GROUP = 1, 2
# Discord: ^[-_'\p{L}\p{N}\p{sc=Deva}\p{sc=Thai}]{1,32}$ ; \w is letters, digits and "_" in Python.
NAME_PATTERN = re.compile(r"[-_'\w]{1,32}")


@dataclass(frozen=True)
class Problem:
    """One refused field: ``where`` is the dotted path in the body (``embeds.0.title``)."""

    where: str
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.where or '(body)'}: {self.message} [{self.code}]"


@dataclass
class Violation:
    """A request the fake refused with 400 50035, kept so a test can list what the bot sent wrong."""

    method: str
    path: str  # relative to /api/v10, tokens redacted
    problems: list[Problem]

    def __str__(self) -> str:
        return f"{self.method} {self.path}: " + "; ".join(map(str, self.problems))


def _too_long(where: str, limit: int) -> Problem:
    return Problem(where, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")


def _bad_length(where: str, limit: int) -> Problem:
    return Problem(where, "BASE_TYPE_BAD_LENGTH", f"Must be between 1 and {limit} in length.")


def errors_object(problems: list[Problem]) -> dict[str, Any]:
    """Discord's nested ``errors`` shape for 50035."""
    root: dict[str, Any] = {}
    for problem in problems:
        node = root
        for part in [p for p in problem.where.split(".") if p]:
            node = node.setdefault(part, {})
        node.setdefault("_errors", []).append({"code": problem.code, "message": problem.message})
    return root


# ---------------------------------------------------------------------------------- the schema
def _close_objects(node: Any) -> Any:
    """Every object schema that lists its properties refuses others (see the module docstring)."""
    if isinstance(node, dict):
        closed = {key: _close_objects(value) for key, value in node.items()}
        if "properties" in closed and "additionalProperties" not in closed and "allOf" not in closed:
            closed["additionalProperties"] = False
        return closed
    if isinstance(node, list):
        return [_close_objects(item) for item in node]
    return node


#: Fields Discord's developer documentation gives and accepts that this copy of the published
#: schema leaves out; added before the objects are closed. Keep each one sourced.
DOCUMENTED_FIELDS: dict[str, dict[str, Any]] = {
    # docs "Application Commands" -> Application Command Object: "nsfw? boolean: Indicates whether
    # the command is age-restricted, defaults to false"; discord.py sends it on every sync.
    "ApplicationCommandUpdateRequest": {"nsfw": {"type": ["boolean", "null"]}},
    # docs "Message Resource" -> Embed Object lists "flags? integer" (embed flags); discord.py's
    # Embed.to_dict() sends "flags": 0 on every embed, and Discord accepts it.
    "RichEmbed": {"flags": {"type": ["integer", "null"], "minimum": 0}},
    # discord.py's handle_message_parameters() puts "tts": false in every message body, edits
    # included; Discord ignores it there (only a new message can be text-to-speech).
    "IncomingWebhookUpdateRequestPartial": {"tts": {"type": ["boolean", "null"]}},
    "IncomingWebhookUpdateForInteractionCallbackRequestPartial": {"tts": {"type": ["boolean", "null"]}},
    "MessageEditRequestPartial": {"tts": {"type": ["boolean", "null"]}},
}
#: Discord reads a snowflake from a JSON string or integer (it returns strings, to spare
#: languages without 64-bit integers); discord.py sends integers, e.g. ``recipient_id``.
SNOWFLAKE_INTEGER = {"type": "integer", "minimum": 0, "maximum": 2**64 - 1}


@functools.cache
def _spec() -> dict[str, Any]:
    with (SPEC_DIR / "openapi.json").open(encoding="utf-8") as file:
        raw = json.load(file)
    schemas = raw["components"]["schemas"]
    for name, fields in DOCUMENTED_FIELDS.items():
        schemas[name]["properties"].update(fields)
    schemas["SnowflakeType"] = {"anyOf": [schemas["SnowflakeType"], SNOWFLAKE_INTEGER]}
    return {**raw, "components": _close_objects(raw["components"])}


@functools.cache
def _registry() -> Registry:
    resource = Resource.from_contents(_spec(), default_specification=DRAFT202012)
    return cast("Registry[Any]", Registry().with_resource(SPEC_URI, resource))


@functools.cache
def _routes() -> list[tuple[re.Pattern[str], str]]:
    """Path templates as regexes; templates with fewer parameters first, so that the literal
    ``/messages/@original`` wins over ``/messages/{message_id}``."""
    templates = sorted(_spec()["paths"], key=lambda t: (t.count("{"), -len(t)))
    return [(re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(t)) + "$"), t) for t in templates]


def _pointer_escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


@functools.cache
def _validator(template: str, method: str) -> Draft202012Validator | None:
    operation = _spec()["paths"][template].get(method.lower())
    if not operation or "requestBody" not in operation:
        return None
    content = operation["requestBody"]["content"]
    if "application/json" not in content:
        return None
    # A multipart request's payload_json is checked against the JSON schema: the files[n] parts
    # are the only difference, and they are counted separately.
    pointer = "/".join(
        _pointer_escape(t) for t in ("paths", template, method.lower(), "requestBody", "content", "application/json")
    )
    schema = {"$ref": f"{SPEC_URI}#/{pointer}/schema"}
    return Draft202012Validator(schema, registry=_registry())


def template_for(path: str) -> str | None:
    for pattern, template in _routes():
        if pattern.match(path):
            return template
    return None


def _leaves(error: ValidationError) -> list[ValidationError]:
    """The errors of the union branch the body meant. Discord's unions are told apart by their
    ``type`` (or by being null), so a branch refused for its ``type`` is not the one meant."""
    if error.validator not in ("anyOf", "oneOf") or not error.context:
        return [error]
    branches: dict[Any, list[ValidationError]] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)

    def wrong_kind(errors: list[ValidationError]) -> bool:
        return any(
            (e.validator in ("enum", "const") and list(e.relative_path) == ["type"])
            or (e.validator == "type" and not e.relative_path)
            for e in errors
        )

    candidates = [errors for errors in branches.values() if not wrong_kind(errors)] or list(branches.values())
    # Among the rest (e.g. integer, number or string autocomplete choices), the branch whose
    # values have the right types, then the one with the fewest errors.
    leaves = [[leaf for sub in errors for leaf in _leaves(sub)] for errors in candidates]
    return min(leaves, key=lambda found: (sum(e.validator == "type" for e in found), len(found)))


def _problem_from(error: ValidationError) -> Problem:
    deepest = best_match([error]) if error.validator not in ("anyOf", "oneOf") else error
    where = ".".join(str(p) for p in deepest.absolute_path)
    validator, value = deepest.validator, deepest.validator_value
    if validator == "maxLength":
        return Problem(where, "BASE_TYPE_MAX_LENGTH", f"Must be {value} or fewer in length.")
    if validator == "minLength":
        return Problem(where, "BASE_TYPE_MIN_LENGTH", f"Must be {value} or more in length.")
    if validator == "maxItems":
        return Problem(where, "BASE_TYPE_MAX_LENGTH", f"Must be {value} or fewer in length.")
    if validator == "minItems":
        return Problem(where, "BASE_TYPE_MIN_LENGTH", f"Must be {value} or more in length.")
    if validator == "required":
        missing = re.search(r"'([^']+)' is a required property", deepest.message)
        field = missing.group(1) if missing else "?"
        return Problem(f"{where}.{field}".strip("."), "BASE_TYPE_REQUIRED", "This field is required")
    if validator in ("additionalProperties", "unevaluatedProperties"):
        return Problem(where, "UNKNOWN_FIELD", deepest.message)
    if validator == "type":
        return Problem(where, "BASE_TYPE_BAD_TYPE", f"Must be of type {value}: {deepest.message}")
    if validator in ("enum", "const"):
        return Problem(where, "BASE_TYPE_CHOICES", f"Value must be one of {value}.")
    if validator in ("maximum", "minimum"):
        return Problem(where, "NUMBER_TYPE_MAX" if validator == "maximum" else "NUMBER_TYPE_MIN", deepest.message)
    return Problem(where, "INVALID", deepest.message)


# ---------------------------------------------------------------------------------- documented rules
def _text_length(value: Any) -> int:
    return len(value) if isinstance(value, str) else 0


def _embeds_length(embeds: list[Any]) -> int:
    """Discord's 6,000: title, description, field names and values, footer text and author name."""
    total = 0
    for embed in embeds:
        if not isinstance(embed, dict):
            continue
        total += _text_length(embed.get("title")) + _text_length(embed.get("description"))
        for field in embed.get("fields") or []:
            if isinstance(field, dict):
                total += _text_length(field.get("name")) + _text_length(field.get("value"))
        for key, text in (("footer", "text"), ("author", "name")):
            if isinstance(embed.get(key), dict):
                total += _text_length(embed[key].get(text))
    return total


def _custom_ids(components: list[Any]) -> Iterator[str]:
    for component in components:
        if not isinstance(component, dict):
            continue
        if isinstance(component.get("custom_id"), str):
            yield component["custom_id"]
        yield from _custom_ids(component.get("components") or [])
        for key in ("accessory", "component"):
            if isinstance(component.get(key), dict):
                yield from _custom_ids([component[key]])


def message_problems(body: Any, *, uploads: int = 0, prefix: str = "") -> list[Problem]:
    """The message rules the schema does not express, for any body that creates or edits one."""
    if not isinstance(body, dict):
        return []

    def at(field: str) -> str:
        return f"{prefix}.{field}" if prefix else field

    problems: list[Problem] = []
    content = body.get("content")
    if isinstance(content, str) and len(content) > CONTENT_MAX:
        problems.append(_too_long(at("content"), CONTENT_MAX))
    embeds = body.get("embeds")
    if isinstance(embeds, list) and _embeds_length(embeds) > EMBEDS_TOTAL_MAX:
        problems.append(Problem(at("embeds"), "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000"))
    components = body.get("components")
    if isinstance(components, list):
        v2 = bool(int(body.get("flags") or 0) & IS_COMPONENTS_V2)
        if not v2 and len(components) > ACTION_ROWS_MAX:
            problems.append(_too_long(at("components"), ACTION_ROWS_MAX))
        for i, row in enumerate(components):
            if isinstance(row, dict) and row.get("type") == 1:
                buttons = [c for c in row.get("components") or [] if isinstance(c, dict) and c.get("type") == 2]
                if len(buttons) > BUTTONS_PER_ROW_MAX:
                    problems.append(
                        Problem(
                            at(f"components.{i}.components"),
                            "BASE_TYPE_MAX_LENGTH",
                            f"Must be {BUTTONS_PER_ROW_MAX} or fewer in length.",
                        )
                    )
        ids = list(_custom_ids(components))
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            problems.append(
                Problem(
                    at("components"),
                    "COMPONENT_CUSTOM_ID_DUPLICATED",
                    f"Component custom id cannot be duplicated: {duplicates}",
                )
            )
    attachments = body.get("attachments")
    count = max(uploads, len(attachments) if isinstance(attachments, list) else 0)
    if count > ATTACHMENTS_MAX:
        problems.append(_too_long(at("attachments"), ATTACHMENTS_MAX))
    return problems


def _autocomplete_problems(data: Any) -> list[Problem]:
    problems: list[Problem] = []
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list):
        return problems
    if len(choices) > CHOICES_MAX:
        problems.append(_too_long("data.choices", CHOICES_MAX))
    for i, choice in enumerate(choices):
        if not isinstance(choice, dict):
            continue
        name = choice.get("name")
        if isinstance(name, str) and not 1 <= len(name) <= CHOICE_NAME_MAX:
            problems.append(_bad_length(f"data.choices.{i}.name", CHOICE_NAME_MAX))
        value = choice.get("value")
        if isinstance(value, str) and len(value) > CHOICE_VALUE_MAX:
            problems.append(_too_long(f"data.choices.{i}.value", CHOICE_VALUE_MAX))
    return problems


def _command_length(node: dict[str, Any]) -> int:
    """Discord's 8,000 per command: names, descriptions and choice names and values, all levels."""
    total = len(node.get("name") or "") + len(node.get("description") or "")
    for choice in node.get("choices") or []:
        if isinstance(choice, dict):
            total += len(str(choice.get("name") or "")) + len(str(choice.get("value") or ""))
    for option in node.get("options") or []:
        if isinstance(option, dict):
            total += _command_length(option)
    return total


def _option_problems(where: str, options: list[Any]) -> list[Problem]:
    problems: list[Problem] = []
    if len(options) > OPTIONS_PER_LEVEL_MAX:
        problems.append(_too_long(where, OPTIONS_PER_LEVEL_MAX))
    optional_seen = False
    names: set[str] = set()
    for j, option in enumerate(options):
        if not isinstance(option, dict):
            continue
        name = str(option.get("name") or "")
        problems += _name_problems(f"{where}.{j}.name", name)
        if name in names:
            problems.append(
                Problem(
                    f"{where}.{j}.name",
                    "APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS",
                    "Option names must be unique",
                )
            )
        names.add(name)
        if not 1 <= len(option.get("description") or "") <= 100:
            problems.append(_bad_length(f"{where}.{j}.description", 100))
        if len(option.get("choices") or []) > CHOICES_MAX:
            problems.append(_too_long(f"{where}.{j}.choices", CHOICES_MAX))
        if option.get("type") in (SUB_COMMAND, SUB_COMMAND_GROUP):
            problems += _option_problems(f"{where}.{j}.options", option.get("options") or [])
        elif option.get("required"):
            if optional_seen:
                problems.append(
                    Problem(
                        f"{where}.{j}.required",
                        "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                        "Required options must be placed before non-required options",
                    )
                )
        else:
            optional_seen = True
    return problems


def _name_problems(where: str, name: str) -> list[Problem]:
    if not NAME_PATTERN.fullmatch(name):
        return [Problem(where, "APPLICATION_COMMAND_INVALID_NAME", f"Command name is invalid: {name!r}")]
    if name != name.lower():
        return [Problem(where, "APPLICATION_COMMAND_INVALID_NAME", f"Command name must be lower case: {name!r}")]
    return []


def command_list_problems(commands: Any) -> list[Problem]:
    """A bulk overwrite's documented rules: names, order of options, 8,000 characters, 25s."""
    if not isinstance(commands, list):
        return []
    problems: list[Problem] = []
    seen: set[tuple[str, int]] = set()
    for i, command in enumerate(commands):
        if not isinstance(command, dict):
            continue
        kind = int(command.get("type") or CHAT_INPUT)
        name = str(command.get("name") or "")
        if (name, kind) in seen:
            problems.append(
                Problem(
                    f"{i}.name",
                    "APPLICATION_COMMANDS_DUPLICATE_NAME",
                    f"Application command names must be unique: {name!r}",
                )
            )
        seen.add((name, kind))
        if kind != CHAT_INPUT:
            continue
        problems += _name_problems(f"{i}.name", name)
        if not 1 <= len(command.get("description") or "") <= 100:
            problems.append(_bad_length(f"{i}.description", 100))
        problems += _option_problems(f"{i}.options", command.get("options") or [])
        if _command_length(command) > COMMAND_TOTAL_MAX:
            problems.append(
                Problem(f"{i}", "APPLICATION_COMMAND_TOO_LARGE", f"Command exceeds maximum size ({COMMAND_TOTAL_MAX})")
            )
    return problems


# ---------------------------------------------------------------------------------- entry point
def check_request(method: str, path: str, body: Any, *, uploads: int = 0) -> list[Problem]:
    """Everything Discord would refuse in this request (``path`` relative to /api/v10)."""
    template = template_for(path)
    if template is None:
        return []
    problems: list[Problem] = []
    validator = _validator(template, method)
    if validator is not None and (body is not None or method in ("PUT", "POST")):
        problems += [_problem_from(leaf) for e in validator.iter_errors(body) for leaf in _leaves(e)]
    flagged = {p.where for p in problems}
    problems += [p for p in _documented_problems(template, method, body, uploads) if p.where not in flagged]
    return problems


def _documented_problems(template: str, method: str, body: Any, uploads: int) -> list[Problem]:
    if template.endswith("/commands") and method == "PUT":
        return command_list_problems(body)
    if template.endswith("/callback") and isinstance(body, dict):
        data = body.get("data")
        if body.get("type") == 8:
            return _autocomplete_problems(data)
        if body.get("type") in (4, 7, 9):
            return message_problems(data, uploads=uploads, prefix="data")
        return []
    is_message = template.startswith("/webhooks/") or (template.startswith("/channels/") and "/messages" in template)
    if is_message and method in ("POST", "PATCH"):
        return message_problems(body, uploads=uploads)
    return []
