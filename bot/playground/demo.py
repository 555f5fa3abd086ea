"""The demo server: its people, roles and channels in the fake Discord, and the shop, codes and
credit the owner sets up with the bot's own slash commands the first time the playground starts.

The ids are fixed, so the playground's database still matches the server after a restart (the
fake Discord keeps nothing between runs; the bot's database does).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fakediscord import Channel, FakeDiscord, Guild, InteractionRecord, Member, Perm, Role

log = logging.getLogger(__name__)

GUILD_ID = 1_200_000_000_000_000_001
BOT_USER_ID = 1_200_000_000_000_000_002
OWNER_ID = 1_200_000_000_000_000_011
MOD_ID = 1_200_000_000_000_000_012
ALICE_ID = 1_200_000_000_000_000_013
BOB_ID = 1_200_000_000_000_000_014
CAROL_ID = 1_200_000_000_000_000_015
MOD_ROLE_ID = 1_200_000_000_000_000_021
BOOSTER_ROLE_ID = 1_200_000_000_000_000_022
VIP_ROLE_ID = 1_200_000_000_000_000_023
GENERAL_ID = 1_200_000_000_000_000_031
AUDIT_ID = 1_200_000_000_000_000_032
FULFILMENT_ID = 1_200_000_000_000_000_033
#: The state key that says the demo shop and credit were set up in this database.
SEEDED_KEY = "playground:seeded"


@dataclass
class Demo:
    guild: Guild
    owner: Member
    mod: Member
    members: list[Member]
    mod_role: Role
    booster_role: Role
    vip_role: Role
    general: Channel
    audit: Channel
    fulfilment: Channel

    @property
    def people(self) -> list[Member]:
        return [self.owner, self.mod, *self.members]


def build(fake: FakeDiscord, *, joined: datetime | None = None) -> Demo:
    """The server in the fake: the owner, a moderator, three members (one a booster), #general,
    #audit and #fulfilment. Build it before the bot connects: it arrives in GUILD_CREATE."""
    joined = joined or datetime.now(UTC) - timedelta(days=120)
    guild = fake.add_guild(GUILD_ID, "Promo Balance Playground", default_channel=False)
    general = fake.add_channel(guild.id, "general", channel_id=GENERAL_ID, topic="Try the slash commands here")
    audit = fake.add_channel(guild.id, "audit", channel_id=AUDIT_ID, topic="Every moderator action")
    fulfilment = fake.add_channel(guild.id, "fulfilment", channel_id=FULFILMENT_ID, topic="Orders staff deliver")
    mod_role = fake.add_role(
        guild.id, "Moderator", permissions=Perm.MANAGE_GUILD, position=10, role_id=MOD_ROLE_ID, color=0x3498DB
    )
    booster_role = fake.add_role(guild.id, "Booster", position=5, role_id=BOOSTER_ROLE_ID, color=0xF47FFF)
    vip_role = fake.add_role(guild.id, "VIP", position=3, role_id=VIP_ROLE_ID, color=0xF1C40F)
    owner = fake.add_member(guild.id, OWNER_ID, "olivia", joined_at=joined, global_name="Olivia (owner)")
    guild.owner_id = owner.id
    mod = fake.add_member(guild.id, MOD_ID, "max", [mod_role], joined_at=joined, global_name="Max (moderator)")
    alice = fake.add_member(guild.id, ALICE_ID, "alice", [booster_role], joined_at=joined, global_name="Alice")
    bob = fake.add_member(guild.id, BOB_ID, "bob", joined_at=joined, global_name="Bob")
    carol = fake.add_member(guild.id, CAROL_ID, "carol", joined_at=joined, global_name="Carol")
    return Demo(guild, owner, mod, [alice, bob, carol], mod_role, booster_role, vip_role, general, audit, fulfilment)


def _has_option(fake: FakeDiscord, guild_id: int, path: str, option: str | None = None) -> bool:
    """Whether the bot synced the command ``path`` (and its ``option``): newer features join the
    demo when the bot has them."""
    commands = [*fake.synced_commands(guild_id), *fake.synced_commands()]
    first, *rest = path.split()
    node: dict[str, Any] | None = next((c for c in commands if c["name"] == first), None)
    for part in rest:
        if node is None:
            return False
        node = next((o for o in node.get("options") or [] if o["name"] == part and o["type"] in (1, 2)), None)
    if node is None:
        return False
    return option is None or any(o["name"] == option for o in node.get("options") or [])


async def seed(fake: FakeDiscord, demo: Demo) -> list[InteractionRecord]:
    """Set the server up as its owner would, with the bot's own commands; returns the interactions
    (the page leaves their answers out: the audit posts they make stay)."""
    guild_id, owner = demo.guild.id, demo.owner.id
    alice, bob, carol = demo.members
    done: list[InteractionRecord] = []

    async def run(command: str, **options: Any) -> None:
        record = await fake.invoke(guild_id, owner, command, options, channel_id=demo.general.id, timeout=15)
        done.append(record)
        if record.deferred:
            await record.wait_for_followup(1, timeout=15)
        log.debug("playground seed: /%s -> %s", command, (record.message.content if record.message else "")[:80])

    await run("settings auditlog", channel=demo.audit.id)
    if _has_option(fake, guild_id, "settings fulfilment"):
        await run("settings fulfilment", channel=demo.fulfilment.id)
    staff = _has_option(fake, guild_id, "shopadmin add", "delivery")
    await run(
        "shopadmin add",
        name="VIP role",
        price="30",
        category="roles",
        role=demo.vip_role.id,
        description="A golden name in the member list.",
    )
    await run(
        "shopadmin add",
        name="Custom emoji",
        price="20",
        category="perks",
        stock=5,
        description="A moderator adds your emoji to the server.",
        **({"delivery": "staff"} if staff else {}),
    )
    await run(
        "shopadmin add",
        name="Game key",
        price="15",
        category="games",
        limit=1,
        description="A key for an indie game, shown only to you.",
        **({"delivery": "code"} if staff else {}),
    )
    if staff and _has_option(fake, guild_id, "shopadmin codes"):
        keys = "\n".join(f"DEMO-GAME-KEY-{n:04d}" for n in range(1, 6)).encode()
        await run("shopadmin codes", item="Game key", file=("game-keys.txt", keys, "text/plain"))
    await run("promo create", code="WELCOME10", amount="10", uses=100, credit_days=14)
    await run("credits grant", member=alice.id, amount="25", expires="5d", reason="Thanks for boosting!")
    await run("credits grant", member=alice.id, amount="10", kind="gift", reason="Birthday gift")
    await run("credits grant", member=bob.id, amount="40", expires="30d", categories="games", reason="Event prize")
    await run("credits grant", member=carol.id, amount="15", one_time=True, reason="Welcome credit")
    await run("credits schedule add", role=demo.booster_role.id, amount="5", rule="0 12 * * 1", valid_days=30)
    return done
