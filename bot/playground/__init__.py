"""The playground (`python -m bot try`): the real bot against the Discord emulator (fakediscord) in
one process, and a local web page that works like a small Discord client. A second front end: it
renders what the bot sent and asks the fake what Discord's client would allow; no rule of the bot or
of Discord is written here again."""
