"""Auth and secrets, through the services: first start, log-in and lock-out, sessions, API keys (and
their cache), user management, and that each of these leaves the audit trail it should."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from pydantic import ValidationError
from sqlalchemy import select, update
from sqlmodel import col

from data.db import Database
from data.models import ApiKey, AuditEvent, User
from engine.config import Settings
from engine.errors import Conflict, Forbidden, Invalid, NotFound, QuotaExceeded, Unauthorized
from engine.principal import Principal
from engine.secrets import SecretBox, SecretsKeyError, SecretsKeyMismatch, derive, load_or_create_key
from engine.services.audit import AuditService
from engine.services.auth import AuthService, Bootstrap
from tests.auth_fixtures import *  # noqa: F403
from tests.auth_fixtures import ADMIN_PASSWORD, audit_rows, make_auth

# --- secrets at rest ------------------------------------------------------------------------------


def test_secret_box_round_trips_and_stores_nothing_for_no_secrets() -> None:
    box = SecretBox(Fernet.generate_key())
    token = box.encrypt({"DB_PASSWORD": "hunter2", "TOKEN": "é✓"})
    assert "hunter2" not in token
    assert box.decrypt(token) == {"DB_PASSWORD": "hunter2", "TOKEN": "é✓"}
    assert box.encrypt({}) == ""
    assert box.decrypt("") == {}


def test_secret_box_with_another_key_reports_a_key_mismatch() -> None:
    token = SecretBox(Fernet.generate_key()).encrypt({"A": "1"})
    with pytest.raises(SecretsKeyMismatch, match="secrets key"):
        SecretBox(Fernet.generate_key()).decrypt(token)


def test_key_file_is_created_once_private_and_reused(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)  # type: ignore[call-arg]
    first = load_or_create_key(settings)
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600
    assert load_or_create_key(settings) == first
    assert [p.name for p in tmp_path.iterdir()] == ["secret.key"]  # no temp file left behind


def test_configured_secret_key_wins_and_a_malformed_one_is_refused(tmp_path: Path) -> None:
    key = Fernet.generate_key()
    assert load_or_create_key(Settings(data_dir=tmp_path, secret_key=key.decode())) == key  # type: ignore[call-arg]
    assert not (tmp_path / "secret.key").exists()
    with pytest.raises(SecretsKeyError, match="NIMBUS_SECRET_KEY"):
        load_or_create_key(Settings(data_dir=tmp_path, secret_key="not-a-key"))  # type: ignore[call-arg]


def test_derived_keys_differ_per_purpose_and_from_the_master_key() -> None:
    key = Fernet.generate_key()
    assert derive(key, "session-cookie") == derive(key, "session-cookie")
    assert derive(key, "session-cookie") != derive(key, "webhooks")
    assert key not in derive(key, "session-cookie")


# --- first start ----------------------------------------------------------------------------------


async def test_first_start_creates_the_admin_and_a_working_bootstrap_key(
    auth: AuthService, audit: AuditService, bootstrap: Bootstrap
) -> None:
    assert bootstrap.username == "admin"
    assert bootstrap.password is None  # it came from settings: nothing to print
    principal = await auth.authenticate_key(bootstrap.api_key)
    assert (principal.actor, principal.actor_type, principal.role) == ("key:bootstrap", "api_key", "admin")
    assert [r.resource_name for r in await audit_rows(audit, "user.create")] == ["admin"]
    assert [r.resource_name for r in await audit_rows(audit, "apikey.create")] == ["bootstrap"]


async def test_second_start_creates_nothing(
    db: Database, audit: AuditService, settings: Settings, auth: AuthService, bootstrap: Bootstrap
) -> None:
    assert await auth.ensure_admin() is None
    assert await make_auth(db, audit, settings).ensure_admin() is None  # a restart, or another node
    async with db.session() as session:
        assert len((await session.execute(select(User))).all()) == 1
        assert len((await session.execute(select(ApiKey))).all()) == 1


async def test_first_start_without_a_password_generates_one_that_works(
    db: Database, audit: AuditService, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path, bootstrap_key_file=str(tmp_path / "keys" / "admin.key"))  # type: ignore[call-arg]
    auth = make_auth(db, audit, settings)
    boot = await auth.ensure_admin()
    assert boot is not None and boot.password and len(boot.password) >= 16
    principal = await auth.login("admin", boot.password)
    assert principal.role == "admin"
    key_file = tmp_path / "keys" / "admin.key"
    assert key_file.read_text().strip() == boot.api_key
    assert key_file.stat().st_mode & 0o777 == 0o600


async def test_a_password_hashed_at_another_cost_logs_in_and_is_rehashed_at_this_one(
    db: Database, audit: AuditService, settings: Settings
) -> None:
    assert (settings.password_time_cost, settings.password_memory_kib) == (1, 1024)  # the suite's light cost
    assert await make_auth(db, audit, settings).ensure_admin() is not None
    stored = await _admin_hash(db)
    assert "m=1024,t=1,p=1" in stored

    default_cost = Settings(data_dir=settings.data_dir, admin_password=ADMIN_PASSWORD)  # type: ignore[call-arg]
    await make_auth(db, audit, default_cost).login("admin", ADMIN_PASSWORD)

    assert "m=65536,t=3,p=4" in await _admin_hash(db)


def test_an_argon2_memory_too_small_for_its_lanes_is_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="password_memory_kib must be at least 8 times"):
        Settings(data_dir=tmp_path, password_memory_kib=64, password_parallelism=16)  # type: ignore[call-arg]


async def _admin_hash(db: Database) -> str:
    async with db.session() as session:
        return (
            await session.execute(select(User.password_hash).where(User.username == "admin"))
        ).scalar_one()


# --- log-in and lock-out --------------------------------------------------------------------------


async def test_login_with_the_right_password_is_audited_and_stamps_last_login(
    auth: AuthService, audit: AuditService, bootstrap: Bootstrap
) -> None:
    principal = await auth.login("admin", ADMIN_PASSWORD, "10.0.0.7")
    assert (principal.actor, principal.actor_type, principal.role, principal.ip) == (
        "admin",
        "user",
        "admin",
        "10.0.0.7",
    )
    [row] = await audit_rows(audit, "user.login")
    assert (row.actor, row.actor_ip, row.resource_id) == ("admin", "10.0.0.7", principal.user_id)
    assert (await auth.me(principal)).last_login_at is not None


async def test_wrong_password_and_unknown_user_fail_alike_and_are_audited(
    auth: AuthService, audit: AuditService, bootstrap: Bootstrap
) -> None:
    for username, password in [("admin", "wrong password"), ("nobody", ADMIN_PASSWORD)]:
        with pytest.raises(Unauthorized, match=r"^invalid username or password$"):
            await auth.login(username, password, "10.0.0.9")
    rows = await audit_rows(audit, "user.login_failed")
    assert sorted((r.resource_name, r.details["reason"], r.actor_ip) for r in rows) == [
        ("admin", "bad_password", "10.0.0.9"),
        ("nobody", "unknown_user", "10.0.0.9"),
    ]


async def test_five_failures_lock_the_account_even_against_the_right_password(
    auth: AuthService, audit: AuditService, bootstrap: Bootstrap
) -> None:
    for _ in range(5):
        with pytest.raises(Unauthorized):
            await auth.login("admin", "guess", "10.0.0.9")
    with pytest.raises(QuotaExceeded, match=r"too many failed log-ins .* try again in 5 minutes"):
        await auth.login("admin", ADMIN_PASSWORD, "10.0.0.9")
    reasons = [r.details["reason"] for r in await audit_rows(audit, "user.login_failed")]
    assert reasons.count("locked") == 1 and reasons.count("bad_password") == 5


async def test_hammering_a_locked_account_does_not_extend_the_lock(
    db: Database, auth: AuthService, bootstrap: Bootstrap
) -> None:
    for _ in range(5):
        with pytest.raises(Unauthorized):
            await auth.login("admin", "guess")
    for _ in range(3):
        with pytest.raises(QuotaExceeded):
            await auth.login("admin", "guess")
    await _age_failures(db, minutes=6)  # the counted failures are now older than the 5-minute lock
    assert (await auth.login("admin", ADMIN_PASSWORD)).actor == "admin"


async def test_failures_of_one_username_do_not_lock_another(auth: AuthService, admin: Principal) -> None:
    await auth.create_user(admin, "ana", "ana-password-1", role="developer")
    for _ in range(5):
        with pytest.raises(Unauthorized):
            await auth.login("admin", "guess")
    assert (await auth.login("ana", "ana-password-1")).actor == "ana"


async def test_disabled_user_cannot_log_in(auth: AuthService, audit: AuditService, admin: Principal) -> None:
    ana = await auth.create_user(admin, "ana", "ana-password-1")
    await auth.update_user(admin, ana.id, disabled=True)
    with pytest.raises(Unauthorized, match="disabled"):
        await auth.login("ana", "ana-password-1")
    assert [r.details["reason"] for r in await audit_rows(audit, "user.login_failed")] == ["disabled"]


async def _age_failures(db: Database, *, minutes: int) -> None:
    async with db.transaction() as session:
        await session.execute(
            update(AuditEvent)
            .where(col(AuditEvent.action) == "user.login_failed")
            .values(created_at=datetime.now(UTC) - timedelta(minutes=minutes))
        )


# --- sessions -------------------------------------------------------------------------------------


async def test_session_token_stands_for_the_user_it_was_issued_to(
    auth: AuthService, admin: Principal
) -> None:
    principal = await auth.session_principal(auth.issue_session(admin), "10.1.1.1")
    assert (principal.actor, principal.user_id, principal.role) == ("admin", admin.user_id, "admin")
    assert principal.ip == "10.1.1.1"


async def test_tampered_and_stale_sessions_are_refused(
    auth: AuthService, settings: Settings, admin: Principal
) -> None:
    token = auth.issue_session(admin)
    with pytest.raises(Unauthorized, match="invalid session"):
        await auth.session_principal(token[:-2] + ("AA" if not token.endswith("AA") else "BB"))

    class ThirteenHoursAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 13 * 3600

    signing_key = derive(load_or_create_key(settings), "session-cookie")
    stale = URLSafeTimedSerializer(signing_key, salt="nimbus.session", signer=ThirteenHoursAgo).dumps(
        {"u": admin.user_id}
    )
    with pytest.raises(Unauthorized, match="session expired"):
        await auth.session_principal(stale)


async def test_disabling_or_deleting_a_user_ends_their_sessions(auth: AuthService, admin: Principal) -> None:
    ana = await auth.create_user(admin, "ana", "ana-password-1")
    bob = await auth.create_user(admin, "bob", "bob-password-1")
    ana_token = auth.issue_session(await auth.login("ana", "ana-password-1"))
    bob_token = auth.issue_session(await auth.login("bob", "bob-password-1"))
    await auth.update_user(admin, ana.id, disabled=True)
    await auth.delete_user(admin, bob.id)
    for token in (ana_token, bob_token):
        with pytest.raises(Unauthorized):
            await auth.session_principal(token)


async def test_logout_is_audited(auth: AuthService, audit: AuditService, admin: Principal) -> None:
    await auth.logout(admin)
    [row] = await audit_rows(audit, "user.logout")
    assert (row.actor, row.resource_id) == ("admin", admin.user_id)


# --- API keys -------------------------------------------------------------------------------------


async def test_a_key_is_shown_once_and_stored_only_as_its_hash(
    db: Database, auth: AuthService, audit: AuditService, admin: Principal
) -> None:
    key, raw = await auth.create_api_key(admin, "ci", expires_in_days=30)
    assert raw.startswith("nmb_") and len(raw) == 44
    assert key.key_hash == hashlib.sha256(raw.encode()).hexdigest() and key.prefix == raw[:12]
    async with db.session() as session:
        stored = (await session.execute(select(ApiKey).where(col(ApiKey.id) == key.id))).scalar_one()
        events = (await session.execute(select(AuditEvent))).scalars().all()
    audit_text = repr([(e.before, e.after, e.details) for e in events])
    assert raw not in repr(stored.model_dump())
    assert raw not in audit_text and key.key_hash not in audit_text
    [row] = [r for r in await audit_rows(audit, "apikey.create") if r.resource_id == key.id]
    assert row.after["expires_at"] is not None and row.actor == "admin"


async def test_key_authenticates_as_its_owner_with_the_key_role(auth: AuthService, admin: Principal) -> None:
    ana = await auth.create_user(admin, "ana", "ana-password-1", role="developer")
    _, raw = await auth.create_api_key(admin, "ana-reader", role="viewer", user_id=ana.id)
    principal = await auth.authenticate_key(raw, "10.2.2.2")
    assert (principal.actor, principal.actor_type, principal.role, principal.user_id, principal.ip) == (
        "key:ana-reader",
        "api_key",
        "viewer",
        ana.id,
        "10.2.2.2",
    )


async def test_unknown_and_malformed_keys_are_invalid(auth: AuthService, bootstrap: Bootstrap) -> None:
    for raw in ("nmb_" + "x" * 40, "nope", bootstrap.api_key + "x", ""):
        with pytest.raises(Unauthorized, match=r"^invalid API key$"):
            await auth.authenticate_key(raw)


async def test_expired_key_is_refused_with_a_clear_message(auth: AuthService, admin: Principal) -> None:
    _, raw = await auth.create_api_key(admin, "old", expires_at=datetime.now(UTC) - timedelta(seconds=1))
    with pytest.raises(Unauthorized, match=r"^API key expired$"):
        await auth.authenticate_key(raw)


async def test_revoked_key_is_refused_at_once_on_the_node_that_cached_it(
    auth: AuthService, audit: AuditService, admin: Principal
) -> None:
    key, raw = await auth.create_api_key(admin, "ci")
    await auth.authenticate_key(raw)  # now cached
    await auth.revoke_api_key(admin, key.id)
    with pytest.raises(Unauthorized, match=r"^invalid API key$"):
        await auth.authenticate_key(raw)
    [row] = await audit_rows(audit, "apikey.revoke")
    assert row.resource_id == key.id and row.before["revoked_at"] is None and row.after["revoked_at"]


async def test_another_node_notices_a_revocation_within_the_cache_ttl(
    db: Database, audit: AuditService, settings: Settings, auth: AuthService, admin: Principal
) -> None:
    other = make_auth(db, audit, settings)
    now = [1000.0]
    other.keys.clock = lambda: now[0]
    key, raw = await auth.create_api_key(admin, "ci")
    await other.authenticate_key(raw)  # cached on the other node
    await auth.revoke_api_key(admin, key.id)
    assert (await other.authenticate_key(raw)).actor == "key:ci"  # within the documented 30 s
    now[0] += 30
    with pytest.raises(Unauthorized):
        await other.authenticate_key(raw)


async def test_last_used_is_written_at_most_once_a_minute(
    db: Database, auth: AuthService, admin: Principal
) -> None:
    now = [1000.0]
    auth.keys.clock = lambda: now[0]
    key, raw = await auth.create_api_key(admin, "ci")

    async def last_used() -> datetime | None:
        async with db.session() as session:
            return (await session.get(ApiKey, key.id)).last_used_at  # type: ignore[union-attr]

    await auth.authenticate_key(raw)
    first = await last_used()
    assert first is not None
    for _ in range(20):
        now[0] += 2
        await auth.authenticate_key(raw)
    assert await last_used() == first  # 40 s of requests: no further writes
    now[0] += 21
    await auth.authenticate_key(raw)
    later = await last_used()
    assert later is not None and later > first


async def test_a_key_role_cannot_exceed_its_creator(auth: AuthService, admin: Principal) -> None:
    await auth.create_user(admin, "dev", "dev-password-1", role="developer")
    dev = await auth.login("dev", "dev-password-1")
    with pytest.raises(Forbidden, match="cannot exceed"):
        await auth.create_api_key(dev, "root", role="admin")
    key, _ = await auth.create_api_key(dev, "mine")
    assert key.role == "developer"


async def test_developers_create_keys_only_for_themselves_and_viewers_not_at_all(
    auth: AuthService, admin: Principal
) -> None:
    await auth.create_user(admin, "dev", "dev-password-1", role="developer")
    await auth.create_user(admin, "viv", "viv-password-1", role="viewer")
    dev = await auth.login("dev", "dev-password-1")
    with pytest.raises(Forbidden):
        await auth.create_api_key(dev, "theirs", user_id=admin.user_id)
    with pytest.raises(Forbidden):
        await auth.create_api_key(await auth.login("viv", "viv-password-1"), "mine")


async def test_admins_list_every_key_and_others_only_their_own(auth: AuthService, admin: Principal) -> None:
    await auth.create_user(admin, "dev", "dev-password-1", role="developer")
    dev = await auth.login("dev", "dev-password-1")
    await auth.create_api_key(dev, "dev-key")
    assert sorted(k.name for k in (await auth.list_api_keys(admin)).items) == ["bootstrap", "dev-key"]
    assert [k.name for k in (await auth.list_api_keys(dev)).items] == ["dev-key"]


async def test_a_developer_cannot_revoke_someone_elses_key(auth: AuthService, admin: Principal) -> None:
    await auth.create_user(admin, "dev", "dev-password-1", role="developer")
    dev = await auth.login("dev", "dev-password-1")
    admin_key, _ = await auth.create_api_key(admin, "admin-key")
    with pytest.raises(NotFound):
        await auth.revoke_api_key(dev, admin_key.id)


async def test_a_demoted_users_keys_lose_the_old_role_at_once(auth: AuthService, admin: Principal) -> None:
    ana = await auth.create_user(admin, "ana", "ana-password-1", role="admin")
    _, raw = await auth.create_api_key(admin, "ana-admin", role="admin", user_id=ana.id)
    assert (await auth.authenticate_key(raw)).role == "admin"
    await auth.update_user(admin, ana.id, role="viewer")
    assert (await auth.authenticate_key(raw)).role == "viewer"
    await auth.update_user(admin, ana.id, disabled=True)
    with pytest.raises(Unauthorized, match="disabled"):
        await auth.authenticate_key(raw)


async def test_expiry_input_is_validated(auth: AuthService, admin: Principal) -> None:
    with pytest.raises(Invalid) as both:
        await auth.create_api_key(
            admin, "x", expires_in_days=1, expires_at=datetime.now(UTC) + timedelta(days=1)
        )
    with pytest.raises(Invalid) as negative:
        await auth.create_api_key(admin, "x", expires_in_days=-1)
    assert (both.value.field, negative.value.field) == ("expires_at", "expires_in_days")


async def test_two_active_keys_of_one_user_cannot_share_a_name(auth: AuthService, admin: Principal) -> None:
    first, _ = await auth.create_api_key(admin, "ci")
    with pytest.raises(Conflict):
        await auth.create_api_key(admin, "ci")
    await auth.revoke_api_key(admin, first.id)
    await auth.create_api_key(admin, "ci")  # the name is free again once the old key is revoked


# --- users ----------------------------------------------------------------------------------------


async def test_user_lifecycle_is_audited_without_password_hashes(
    auth: AuthService, audit: AuditService, admin: Principal
) -> None:
    ana = await auth.create_user(admin, "ana", "ana-password-1", role="developer")
    await auth.update_user(admin, ana.id, role="viewer", password="ana-password-2")
    assert (await auth.login("ana", "ana-password-2")).role == "viewer"
    await auth.delete_user(admin, ana.id)
    [created] = [r for r in await audit_rows(audit, "user.create") if r.resource_id == ana.id]
    [updated] = await audit_rows(audit, "user.update")
    [deleted] = await audit_rows(audit, "user.delete")
    assert created.after == {"username": "ana", "role": "developer", "tenant": "default", "disabled": False}
    assert (updated.before["role"], updated.after["role"], updated.details) == (
        "developer",
        "viewer",
        {"password_changed": True},
    )
    assert deleted.before["username"] == "ana" and deleted.after is None
    blob = repr([(r.before, r.after, r.details) for r in (created, updated, deleted)])
    assert "argon2" not in blob and ana.password_hash not in blob


async def test_only_admins_manage_users(auth: AuthService, admin: Principal) -> None:
    await auth.create_user(admin, "dev", "dev-password-1", role="developer")
    dev = await auth.login("dev", "dev-password-1")
    with pytest.raises(Forbidden):
        await auth.create_user(dev, "eve", "eve-password-1")
    with pytest.raises(Forbidden):
        await auth.list_users(dev)
    with pytest.raises(Forbidden):
        await auth.update_user(dev, dev.user_id, role="admin")


async def test_admins_cannot_delete_themselves_or_lose_the_last_admin(
    auth: AuthService, admin: Principal
) -> None:
    with pytest.raises(Conflict, match="your own account"):
        await auth.delete_user(admin, admin.user_id)
    with pytest.raises(Conflict, match="last enabled admin"):
        await auth.update_user(admin, admin.user_id, role="developer")
    ana = await auth.create_user(admin, "ana", "ana-password-1", role="admin")
    ana_principal = await auth.login("ana", "ana-password-1")
    await auth.update_user(admin, admin.user_id, role="developer")  # allowed: ana is still an admin
    with pytest.raises(Conflict, match="last enabled admin"):
        await auth.update_user(ana_principal, ana.id, role="viewer")


async def test_usernames_are_unique_and_validated(auth: AuthService, admin: Principal) -> None:
    await auth.create_user(admin, "ana", "ana-password-1")
    with pytest.raises(Conflict):
        await auth.create_user(admin, "ana", "ana-password-1")
    with pytest.raises(Invalid) as bad_name:
        await auth.create_user(admin, "no spaces", "ana-password-1")
    with pytest.raises(Invalid) as short:
        await auth.create_user(admin, "bea", "short")
    assert (bad_name.value.field, short.value.field) == ("username", "password")


async def test_deleting_a_user_deletes_their_keys(db: Database, auth: AuthService, admin: Principal) -> None:
    ana = await auth.create_user(admin, "ana", "ana-password-1", role="developer")
    _, raw = await auth.create_api_key(admin, "ana-key", user_id=ana.id)
    await auth.authenticate_key(raw)
    await auth.delete_user(admin, ana.id)
    with pytest.raises(Unauthorized):
        await auth.authenticate_key(raw)
    async with db.session() as session:
        assert (await session.execute(select(ApiKey).where(col(ApiKey.user_id) == ana.id))).first() is None
