"""Settings from the environment and a real `.env` file (python-dotenv parses it; the environment wins)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import DEFAULT_DATABASE_PATH, ConfigError, Settings

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GhIjKl.s3cr3t-t0k3n_value-that-must-never-print"


def dotenv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / ".env"
    path.write_text(text, encoding="utf-8")
    return path


def load(path: Path | None, **environ: str) -> Settings:
    """Settings from `path` with exactly `environ` as the environment (never the real one)."""
    return Settings.load(environ=dict(environ), dotenv=path)


def test_inline_comment_is_not_part_of_the_value(tmp_path):
    settings = load(dotenv(tmp_path, "LOG_LEVEL=debug # verbose\nDEV_GUILD_ID=123 # my test server\n"))
    assert settings.log_level == "DEBUG"
    assert settings.dev_guild_id == 123


def test_full_line_comments_and_blank_lines(tmp_path):
    path = dotenv(tmp_path, "# a comment\n\n   \n  # indented comment\nLOG_LEVEL=WARNING\n\n# DEV_GUILD_ID=5\n")
    settings = load(path)
    assert settings.log_level == "WARNING"
    assert settings.dev_guild_id is None


def test_double_and_single_quotes_keep_a_hash(tmp_path):
    path = dotenv(
        tmp_path,
        'DATABASE_PATH="/srv/pb #1/ledger.sqlite3" # the live one\n'
        "DISCORD_API_BASE='http://127.0.0.1:8080/api/v10#frag'\n"
        'DISCORD_GATEWAY_URL="ws://127.0.0.1:8080/"\n'
        "LOG_LEVEL='error'\n",
    )
    settings = load(path)
    assert settings.database_path == Path("/srv/pb #1/ledger.sqlite3")
    assert settings.discord_api_base == "http://127.0.0.1:8080/api/v10#frag"
    assert settings.discord_gateway_url == "ws://127.0.0.1:8080/"
    assert settings.log_level == "ERROR"


def test_quoted_token_is_unquoted(tmp_path):
    assert load(dotenv(tmp_path, f'DISCORD_TOKEN="{TOKEN}"\n')).discord_token == TOKEN
    assert load(dotenv(tmp_path, f"DISCORD_TOKEN='{TOKEN}'\n")).discord_token == TOKEN


def test_export_prefix(tmp_path):
    settings = load(dotenv(tmp_path, f"export DISCORD_TOKEN={TOKEN}\nexport LOG_LEVEL=debug\n"))
    assert settings.discord_token == TOKEN
    assert settings.log_level == "DEBUG"


def test_values_are_literal_no_variable_expansion(tmp_path, monkeypatch):
    monkeypatch.setenv("PB_TEST_HOME", "/expanded")
    settings = load(dotenv(tmp_path, "DATABASE_PATH=${PB_TEST_HOME}/pb.sqlite3\n"))
    assert settings.database_path == Path("${PB_TEST_HOME}/pb.sqlite3")


def test_environment_wins_over_the_file(tmp_path):
    path = dotenv(tmp_path, "LOG_LEVEL=DEBUG\nDEV_GUILD_ID=111\nDATABASE_PATH=file.sqlite3\n")
    settings = load(path, LOG_LEVEL="error", DEV_GUILD_ID="222")
    assert settings.log_level == "ERROR"
    assert settings.dev_guild_id == 222
    assert settings.database_path == Path("file.sqlite3")  # not in the environment: the file's


def test_empty_value_in_the_file_is_unset(tmp_path):
    path = dotenv(tmp_path, 'DISCORD_TOKEN=\nDEV_GUILD_ID=""\nLOG_LEVEL=\nDATABASE_PATH=   \nDISCORD_API_BASE\n')
    settings = load(path)
    assert settings.discord_token == ""
    assert settings.dev_guild_id is None
    assert settings.log_level == "INFO"
    assert settings.database_path == Path(DEFAULT_DATABASE_PATH)
    assert settings.discord_api_base is None


def test_empty_value_in_the_environment_wins_and_is_unset(tmp_path):
    """A variable set in the environment wins even when empty: `DEV_GUILD_ID= python -m bot`
    turns off the file's dev guild (as load_dotenv never overrides a set variable)."""
    path = dotenv(tmp_path, f"DISCORD_TOKEN={TOKEN}\nDEV_GUILD_ID=111\nLOG_LEVEL=DEBUG\n")
    settings = load(path, DEV_GUILD_ID="", LOG_LEVEL="")
    assert settings.dev_guild_id is None
    assert settings.log_level == "INFO"
    assert settings.discord_token == TOKEN  # not in the environment at all: the file's


def test_missing_file_and_no_file(tmp_path):
    for path in (tmp_path / "absent.env", tmp_path, None):  # a missing file, a folder, no file asked for
        settings = load(path)
        assert settings.discord_token == ""
        assert settings.database_path == Path(DEFAULT_DATABASE_PATH)
        assert settings.dev_guild_id is None
        assert settings.log_level == "INFO"
        assert settings.discord_api_base is None
        assert settings.discord_gateway_url is None


def test_no_file_does_not_search_parent_folders(tmp_path, monkeypatch):
    dotenv(tmp_path, "LOG_LEVEL=DEBUG\n")
    child = tmp_path / "child"
    child.mkdir()
    monkeypatch.chdir(child)
    assert load(None).log_level == "INFO"
    assert load(Path(".env")).log_level == "INFO"  # the default path is relative to the working folder


def test_env_example_copy_loads_with_defaults(tmp_path):
    path = dotenv(tmp_path, (ROOT / ".env.example").read_text(encoding="utf-8"))
    settings = load(path)
    assert settings.discord_token == ""
    assert settings.database_path == Path(DEFAULT_DATABASE_PATH)
    assert settings.dev_guild_id is None
    assert settings.log_level == "INFO"
    assert settings.discord_api_base is None
    assert settings.discord_gateway_url is None


def test_api_base_trailing_slash_removed(tmp_path):
    assert load(None, DISCORD_API_BASE="http://127.0.0.1:9/api/v10/").discord_api_base == "http://127.0.0.1:9/api/v10"


@pytest.mark.parametrize("value", ["my-server", "12 34", "-5", "1e9", "²", "١٢٣"])
def test_bad_dev_guild_id(tmp_path, value):
    with pytest.raises(ConfigError, match=r"^DEV_GUILD_ID must be a server id \(digits only\), not ") as exc:
        load(None, DEV_GUILD_ID=value)
    assert repr(value.strip()) in str(exc.value)


def test_bad_dev_guild_id_from_the_file(tmp_path):
    with pytest.raises(ConfigError, match=r"DEV_GUILD_ID must be a server id \(digits only\), not 'abc'\."):
        load(dotenv(tmp_path, "DEV_GUILD_ID=abc # oops\n"))


@pytest.mark.parametrize("value", ["verbose", "TRACE", "debug # verbose"])
def test_bad_log_level(tmp_path, value):
    message = f"LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, not {value.upper()!r}."
    with pytest.raises(ConfigError) as exc:
        load(None, LOG_LEVEL=value)  # the environment is taken as it is: no comment stripping there
    assert str(exc.value) == message


def test_log_level_is_case_insensitive(tmp_path):
    assert load(dotenv(tmp_path, "LOG_LEVEL=warning\n")).log_level == "WARNING"
    assert load(None, LOG_LEVEL=" Critical ").log_level == "CRITICAL"


def test_repr_and_str_never_contain_the_token(tmp_path):
    from_file = load(dotenv(tmp_path, f"DISCORD_TOKEN={TOKEN}\n"))
    from_env = load(None, DISCORD_TOKEN=TOKEN)
    for settings in (from_file, from_env):
        assert settings.discord_token == TOKEN
        for text in (repr(settings), str(settings), f"{settings}", f"{settings!r}", repr([settings])):
            assert TOKEN not in text
            assert "s3cr3t" not in text
            assert "token_set=True" in text
    assert "token_set=False" in repr(load(None))


def test_database_url_must_be_postgres_and_its_password_never_prints(tmp_path):
    settings = load(None, DATABASE_URL="postgresql://bot:hunter2@db.example:5432/promo")
    assert settings.database_url == "postgresql://bot:hunter2@db.example:5432/promo"
    assert "hunter2" not in repr(settings)
    assert "bot:***@db.example" in repr(settings)
    with pytest.raises(ConfigError, match="PostgreSQL URL") as refused:
        load(None, DATABASE_URL="mysql://bot:hunter2@db/promo")
    assert "hunter2" not in str(refused.value)
    assert load(None, DATABASE_URL="").database_url is None


@pytest.mark.parametrize(
    ("count", "ids", "expected"),
    [
        ("8", "0-3", (8, (0, 1, 2, 3))),
        ("8", "4-7", (8, (4, 5, 6, 7))),
        ("6", "0, 2,4-5", (6, (0, 2, 4, 5))),
        ("3", "", (3, (0, 1, 2))),
        ("", "", (None, None)),
    ],
)
def test_shard_settings(count, ids, expected):
    settings = load(None, SHARD_COUNT=count, SHARD_IDS=ids)
    assert (settings.shard_count, settings.shard_ids) == expected


@pytest.mark.parametrize(
    ("count", "ids", "message"),
    [
        ("", "0-3", "needs SHARD_COUNT"),
        ("0", "", "1 or more"),
        ("eight", "", "whole number"),
        ("4", "0-4", "shards 0 to 3"),
        ("4", "3-1", "ranges like"),
        ("4", "a", "ranges like"),
    ],
)
def test_bad_shard_settings_are_refused(count, ids, message):
    with pytest.raises(ConfigError, match=message):
        load(None, SHARD_COUNT=count, SHARD_IDS=ids)
