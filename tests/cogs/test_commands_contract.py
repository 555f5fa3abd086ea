"""The commands the bot synced to (fake) Discord against the public contract of SPEC §6.

The contract is written out here, not parsed from SPEC.md, so this test runs from any checkout.
Command and option names are public: renaming or dropping one breaks users' habits. New commands
and options are fine, but only once they are listed in EXTRA_* below (a deliberate, reviewed act).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import discord

from tests import rawsql
from tests.e2e import World, text_of

REQ, OPT = True, False

# SPEC §6, command path -> {option: required}. `[x]` in the spec is optional, the rest required.
CONTRACT: dict[str, dict[str, bool]] = {
    # members
    "balance": {},
    "history": {"page": OPT},
    "redeem": {"code": REQ},
    "shop": {"category": OPT},
    "buy": {"item": REQ, "quantity": OPT},
    "orders": {},
    "cancel": {"order": REQ},
    "reminders": {"enabled": REQ},
    "terms": {},
    # moderators
    "credits grant": {
        "member": REQ,
        "amount": REQ,
        "expires": OPT,
        "starts": OPT,
        "categories": OPT,
        "one_time": OPT,
        "kind": OPT,
        "reason": OPT,
    },
    "credits grant-role": {
        "role": REQ,
        "amount": REQ,
        "expires": OPT,
        "starts": OPT,
        "categories": OPT,
        "one_time": OPT,
        "kind": OPT,
        "reason": OPT,
    },
    "credits revoke": {"member": REQ, "lot": OPT, "amount": OPT, "reason": REQ},
    "credits extend": {"lot": REQ, "expires": REQ, "reason": OPT},
    "credits inspect": {"member": REQ},
    "credits export": {},
    "credits report": {},
    "credits schedule add": {
        "role": REQ,
        "amount": REQ,
        "rule": REQ,
        "valid_days": OPT,
        "categories": OPT,
        "kind": OPT,
    },
    "credits schedule list": {},
    "credits schedule remove": {"id": REQ},
    "promo create": {
        "code": REQ,
        "amount": REQ,
        "uses": OPT,
        "per_member": OPT,
        "redeem_by": OPT,
        "credit_days": OPT,
        "credit_expires": OPT,
        "categories": OPT,
        "one_time": OPT,
        "role": OPT,
        "min_member_days": OPT,
    },
    "promo list": {},
    "promo disable": {"code": REQ},
    "giftcard issue": {"amount": REQ, "count": OPT, "claim_by": OPT},
    "giftcard list": {},
    "giftcard void": {"last4": REQ},
    "shopadmin add": {
        "name": REQ,
        "price": REQ,
        "category": REQ,
        "stock": OPT,
        "role": OPT,
        "limit": OPT,
        "description": OPT,
        "delivery": OPT,
    },
    "shopadmin codes": {"item": REQ, "file": REQ},
    "shopadmin edit": {"item": REQ},  # "item …": the changes are ours to choose (EXTRA_OPTIONS)
    "shopadmin remove": {"item": REQ},
    "shopadmin refund": {"order": REQ},
    "fulfil queue": {},
    "fulfil done": {"order": REQ, "note": OPT},
    "fulfil deny": {"order": REQ, "reason": REQ},
    "settings fulfilment": {"channel": REQ},
    "settings currency": {"name": OPT, "symbol": OPT, "decimals": OPT},
    "settings reminders": {"lead_times": OPT},
    "settings modrole": {"role": REQ},
    "settings auditlog": {"channel": REQ},
    "settings exclude-category": {"category": REQ},
    "settings include-category": {"category": REQ},
    "settings timezone": {"tz": REQ},
    "settings show": {},
}
MODERATOR_GROUPS = {"credits", "promo", "giftcard", "shopadmin", "fulfil", "settings"}

# Beyond the spec, on purpose. Extras must be optional, so the spec's invocations keep working.
EXTRA_COMMANDS: set[str] = set()
EXTRA_OPTIONS: dict[str, set[str]] = {
    "orders": {"page"},
    "credits extend": {"member"},  # narrows the lot autocomplete, and is checked against the lot
    "shopadmin edit": {
        "name",
        "price",
        "category",
        "stock",
        "unlimited_stock",
        "role",
        "no_role",
        "limit",
        "no_limit",
        "description",
        "active",
    },
    "shopadmin refund": {"reason"},
    "giftcard void": {"card"},  # which card, when several unredeemed cards share their last 4
    "settings currency": {"no_symbol"},  # Discord can't send an empty symbol to remove it
    "fulfil queue": {"page"},
}

# What the spec's wording fixes about some options' types.
USER, CHANNEL, ROLE, BOOLEAN, STRING, INTEGER, ATTACHMENT = 6, 7, 8, 5, 3, 4, 11
OPTION_TYPES = {
    "member": USER,
    "role": ROLE,
    "channel": CHANNEL,
    "one_time": BOOLEAN,
    "enabled": BOOLEAN,
    "amount": STRING,
    "price": STRING,  # typed in the guild's currency: "12.50" must reach the parser
    "lot": INTEGER,
    "order": INTEGER,
    "id": INTEGER,
    "last4": STRING,
    "code": STRING,
    "file": ATTACHMENT,
    "delivery": STRING,
    "note": STRING,
}
MANAGE_GUILD = str(discord.Permissions(manage_guild=True).value)


def leaves(command: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """(path, command-or-subcommand) for every invocable command of a synced top-level command."""
    path = f"{prefix} {command['name']}".strip()
    children = [o for o in command.get("options") or [] if o["type"] in (1, 2)]
    if not children:
        yield path, command
    for child in children:
        yield from leaves(child, path)


def every_node(command: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The command, its groups, subcommands and options: everything Discord shows a description of."""
    yield command
    for option in command.get("options") or []:
        yield from every_node(option)


def synced(w: World) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    commands = w.fake.synced_commands(None) + w.fake.synced_commands(w.guild.id)
    assert commands, "the bot synced no commands"
    return commands, {path: leaf for c in commands for path, leaf in leaves(c)}


async def test_synced_commands_match_spec_section_6(world: World):
    _, tree = synced(world)
    missing = sorted(set(CONTRACT) - set(tree))
    assert not missing, f"commands of SPEC §6 not synced: {missing}"
    unexpected = sorted(set(tree) - set(CONTRACT) - EXTRA_COMMANDS)
    assert not unexpected, f"synced commands not in SPEC §6 nor EXTRA_COMMANDS: {unexpected}"
    for path, spec_options in CONTRACT.items():
        options = {o["name"]: o for o in tree[path].get("options") or []}
        for name, required in spec_options.items():
            assert name in options, f"/{path} lacks option {name!r} of SPEC §6"
            assert bool(options[name].get("required")) is required, (
                f"/{path} {name}: SPEC §6 says {'required' if required else 'optional'}"
            )
        extra = set(options) - set(spec_options)
        allowed = EXTRA_OPTIONS.get(path, set())
        assert extra <= allowed, f"/{path} has options beyond SPEC §6 and EXTRA_OPTIONS: {sorted(extra - allowed)}"
        for name in extra:
            assert not options[name].get("required"), f"/{path} {name}: an extra option must be optional"


def test_the_allow_lists_name_nothing_of_the_spec():
    """An extra that shadows a spec option would hide its loss; a stale extra hides nothing."""
    for path, extras in EXTRA_OPTIONS.items():
        assert path in CONTRACT or path in EXTRA_COMMANDS, path
        assert not extras & set(CONTRACT.get(path, {})), path
    assert not EXTRA_COMMANDS & set(CONTRACT)


async def test_option_types_and_kind_choices(world: World):
    _, tree = synced(world)
    for path in CONTRACT:
        for option in tree[path].get("options") or []:
            expected = OPTION_TYPES.get(option["name"])
            if expected is not None:
                assert option["type"] == expected, f"/{path} {option['name']} has type {option['type']}"
    for path in ("credits grant", "credits grant-role", "credits schedule add"):
        (kind,) = [o for o in tree[path]["options"] if o["name"] == "kind"]
        assert sorted(c["value"] for c in kind["choices"]) == ["gift", "promo"], path
    (decimals,) = [o for o in tree["settings currency"]["options"] if o["name"] == "decimals"]
    assert sorted(c["value"] for c in decimals["choices"]) == [0, 2]
    (delivery,) = [o for o in tree["shopadmin add"]["options"] if o["name"] == "delivery"]
    assert sorted(c["value"] for c in delivery["choices"]) == ["code", "instant", "staff"]
    for path in ("cancel", "fulfil done", "fulfil deny"):  # orders are picked as one types
        (order,) = [o for o in tree[path]["options"] if o["name"] == "order"]
        assert order.get("autocomplete"), path


async def test_moderator_groups_need_manage_server_and_every_command_is_guild_only(world: World):
    commands, _ = synced(world)
    by_name = {c["name"]: c for c in commands}
    assert set(by_name) >= MODERATOR_GROUPS
    for command in commands:
        name = command["name"]
        if name in MODERATOR_GROUPS:
            assert command.get("default_member_permissions") == MANAGE_GUILD, name
        else:  # members must see their commands
            assert command.get("default_member_permissions") is None, name
        assert command.get("contexts") == [0], f"/{name} must be usable in servers only (contexts)"
        assert command.get("dm_permission") in (False, None), name


async def test_every_command_and_option_has_a_description(world: World):
    commands, _ = synced(world)
    for command in commands:
        for node in every_node(command):
            description = (node.get("description") or "").strip()
            where = f"{node['name']!r} of /{command['name']}"
            assert description, where
            assert description not in ("…", "..."), where
            assert len(description) <= 100, node["name"]


def _dummy(option: dict[str, Any], w: World) -> Any:
    """A value Discord's client would accept for a required option (the check must run first)."""
    kind = option["type"]
    if kind == USER:
        return w.alice.id
    if kind == ROLE:
        return w.vip_role.id
    if kind == CHANNEL:
        return w.audit_channel_id
    if kind == BOOLEAN:
        return False
    if kind == ATTACHMENT:
        return ("codes.txt", b"SECRET-1\n")
    if option.get("choices"):
        return option["choices"][0]["value"]
    if kind in (INTEGER, 10):
        return option.get("min_value", 1)
    return "7" * max(option.get("min_length", 1), 4)


async def test_every_moderator_command_checks_again_at_run_time(world: World):
    """Every moderator command the bot synced, whatever its name, refuses a member without Manage
    Server whose interaction arrives anyway (a server owner changed the command's permissions), and
    writes nothing. New moderator commands are covered without touching this test."""
    w = world
    _, tree = synced(w)
    paths = sorted(p for p in tree if p.split()[0] in MODERATOR_GROUPS)
    assert len(paths) >= 25

    def dump() -> dict[str, list]:
        return rawsql.dump(w.settings)

    before = dump()
    for path in paths:
        options = {o["name"]: _dummy(o, w) for o in tree[path].get("options") or [] if o.get("required")}
        rec = await w.fake.invoke(w.guild.id, w.bob.id, path, options, enforce_permissions=False)
        await w.finished(rec)
        assert rec.ephemeral, path
        assert "This command is for moderators" in text_of(rec), (path, text_of(rec))
    assert dump() == before


async def test_moderator_autocomplete_lists_nothing_to_non_moderators(world: World):
    """discord.py runs no command or cog check before an autocomplete callback: without a check of
    its own, a member whose client shows the command (the owner changed its permissions) could list
    anyone's lots, every promo code and removed items."""
    w = world
    lot = await w.ledger.grant(w.guild.id, w.alice.id, 40, actor_id=w.mod.id, key=None)
    await w.ledger.create_promo(w.guild.id, "STAFF-ONLY", 500, actor_id=w.mod.id, key=None)
    await w.ledger.add_item(w.guild.id, "Hidden", 5, "misc", actor_id=w.mod.id, key=None)
    _, tree = synced(w)
    focused = [
        (path, option)
        for path in sorted(p for p in tree if p.split()[0] in MODERATOR_GROUPS)
        for option in tree[path].get("options") or []
        if option.get("autocomplete")
    ]
    assert len(focused) >= 10
    public = {"categories", "category", "tz"}  # what /shop shows anyway, and the IANA zone list
    seen: dict[str, list] = {}
    for user in (w.mod, w.bob):
        for path, option in focused:
            options = {"member": w.alice.id} if option["name"] == "lot" else {}
            choices = await w.fake.autocomplete(
                w.guild.id, user.id, path, options, focused=option["name"], enforce_permissions=False
            )
            seen[f"{user.id} {path} {option['name']}"] = choices
            if user is w.bob and option["name"] not in public:
                assert choices == [], f"/{path} {option['name']} lists {choices} to a non-moderator"
    # The moderator does get them, so the empty lists above are the check at work.
    assert [c["value"] for c in seen[f"{w.mod.id} credits revoke lot"]] == [lot.first_lot_id]
    assert [c["value"] for c in seen[f"{w.mod.id} promo disable code"]] == ["STAFF-ONLY"]
    assert [c["name"] for c in seen[f"{w.mod.id} shopadmin edit item"]] == ["Hidden"]


async def test_every_text_option_has_a_length_limit_discord_enforces(world: World):
    """SPEC §1: every free-text option has a max_length, so Discord's client stops the typing before
    the bot ever sees an input longer than its messages are built for."""
    _, tree = synced(world)
    text_options = [
        (path, o)
        for path, leaf in tree.items()
        for o in leaf.get("options") or []
        if o["type"] == 3 and not o.get("choices")  # fixed choices need no length limit
    ]
    assert text_options
    unbounded = [f"/{path} {o['name']}" for path, o in text_options if not o.get("max_length")]
    assert unbounded == [], f"text options without max_length: {unbounded}"
    assert all(o["max_length"] <= 6000 for _, o in text_options)  # Discord's own ceiling
