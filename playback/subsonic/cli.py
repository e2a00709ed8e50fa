"""``playlog subsonic password|revoke``: app passwords for the Subsonic API.

``password USER_ID`` issues one: a fresh random password, encrypted with the key derived from
PLAYLOG_PII_MASTER_KEY (playback/subsonic/secrets.py), written as ``app_password.issued`` to the
credentials topic (or ``--emit FILE.jsonl``), and printed once, as the last line of standard output
(the note about it goes to standard error). The worker folds it into ``view.credentials``; an API
accepts it as soon as that document reaches its replica (about a second). ``revoke USER_ID`` writes
``app_password.revoked`` for one password (``--id``) or every password the user was issued so far.
"""

from __future__ import annotations

import time
import uuid

import click

from core.errors import PlaylogError

MAX_ID_CHARS = 256


def _user(user_id: str) -> str:
    if not user_id or len(user_id) > MAX_ID_CHARS or any(c.isspace() for c in user_id):
        raise PlaylogError(f"USER_ID must be 1 to {MAX_ID_CHARS} characters without spaces, got {user_id[:40]!r}")
    return user_id


def _emit(event: dict, emit: str | None) -> None:
    """Validate the event, then send it to Kafka (flushed: delivered or an error) or to ``emit``."""
    from schemas.codec import EventError, default_codec
    from topics.emit import JsonlSink

    codec = default_codec()
    try:
        checked = codec.from_json(codec.to_json(event))
    except EventError as exc:
        raise PlaylogError(exc.reason) from None
    if emit:
        try:
            sink = JsonlSink(emit, append=True)
        except OSError as exc:
            raise PlaylogError(f"cannot write {emit}: {exc.strerror or exc}") from None
    else:
        from core.settings import load
        from topics.producer import KafkaEventSink

        sink = KafkaEventSink(load())
    try:
        sink.emit(checked)
    finally:
        sink.close()


def _event(etype: str, **fields: object) -> dict:
    return {"type": etype, "event_id": str(uuid.uuid4()), "occurred_at": time.time_ns() // 1_000_000, **fields}


_emit_option = click.option("--emit", "emit", metavar="FILE.jsonl",
                            help="Append the event to a JSON Lines file instead of producing it to Kafka.")


@click.group("subsonic")
def subsonic_group() -> None:
    """App passwords for the OpenSubsonic API (/rest on the playback API)."""


@subsonic_group.command("password")
@click.argument("user_id")
@_emit_option
def password_command(user_id: str, emit: str | None) -> None:
    """Issue an app password for USER_ID and print it once, as the last line.

    Use it in a Subsonic client with USER_ID as the user name (token + salt or plain password auth),
    or alone as the OpenSubsonic apiKey. It is kept encrypted with PLAYLOG_PII_MASTER_KEY.
    """
    from core.settings import dev_secrets_in_use, load
    from playback.subsonic.secrets import PasswordBox, new_password, new_password_id

    user_id = _user(user_id)
    try:
        settings = load()
    except ValueError as exc:
        raise PlaylogError(str(exc)) from None
    if dev_secrets_in_use(settings, ("PLAYLOG_PII_MASTER_KEY",)):
        click.echo("warning: PLAYLOG_PII_MASTER_KEY has its built-in development value: this password is "
                   "encrypted with a public key (fine for local use only)", err=True)
    password, pid = new_password(), new_password_id()
    ciphertext = PasswordBox(settings.pii_master_key).seal(user_id, pid, password)
    _emit(_event("app_password.issued", user_id=user_id, password_id=pid, ciphertext=ciphertext), emit)
    click.echo(f"app password {pid} issued for {user_id} (Subsonic user name: {user_id}; also usable as the "
               f"apiKey). It is shown once; revoke it with: playlog subsonic revoke {user_id} --id {pid}", err=True)
    click.echo(password)


@subsonic_group.command("revoke")
@click.argument("user_id")
@click.option("--id", "password_id", metavar="PASSWORD_ID", help="Revoke this password only (default: every "
              "password issued to USER_ID so far).")
@_emit_option
def revoke_command(user_id: str, password_id: str | None, emit: str | None) -> None:
    """Revoke USER_ID's app passwords (one with --id, else all of them)."""
    user_id = _user(user_id)
    if password_id is not None and (not password_id.strip() or len(password_id) > MAX_ID_CHARS):
        raise PlaylogError("--id must be a password id as `playlog subsonic password` printed it")
    _emit(_event("app_password.revoked", user_id=user_id, password_id=password_id), emit)
    what = f"app password {password_id}" if password_id else "every app password issued so far"
    click.echo(f"{user_id}: {what} revoked (effective once the API's replica has the view, about a second)", err=True)
