"""The second factor (双因素鉴别): TOTP codes (RFC 6238, pyotp) from an authenticator app.

Enrolment: a fresh 160-bit secret is shown once (as an `otpauth://` URI and as text to type in);
it is stored only after the person proves their app produces the right code. Verification
accepts the code of the current 30-second step or one step either side (clock drift) and never
the same step twice for one person (a code read over someone's shoulder cannot be replayed):
the step used is recorded in the security-log event of the login or enrolment, and checked
against that person's recent events.

At rest the secret is sealed (数据保密性: authentication data is stored encrypted): an HMAC-SHA256
keystream keyed from SECRET_KEY with a random nonce, bound to the user id and authenticated by an
HMAC tag (`v1.` + base64url(nonce 8 | ciphertext 20 | tag 16), 63 characters). A copy of the
database alone does not yield working secrets; a stolen row cannot be moved to another account.
Rotating SECRET_KEY therefore means re-enrolling every second factor.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

import pyotp
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import SecurityEvent, User
from .accounts import log

ISSUER = "ParkFlow 镇海园区审批"
SECRET_BYTES = 20  # 160 bits, RFC 4226's recommendation
DRIFT_STEPS = 1
_PREFIX = "v1."
_USED_EVENTS = ("login", "totp_enrolled")


class SealError(ValueError):
    """A sealed secret that does not open (wrong key, edited, or moved to another user)."""


def _keys(secret_key: str) -> tuple[bytes, bytes]:
    root = hashlib.sha256(b"parkflow-second-factor|" + secret_key.encode()).digest()
    return (hmac.new(root, b"encrypt", hashlib.sha256).digest(),
            hmac.new(root, b"authenticate", hashlib.sha256).digest())


def seal(raw: bytes, user_id: int, secret_key: str) -> str:
    enc, mac = _keys(secret_key)
    nonce = secrets.token_bytes(8)
    context = nonce + str(user_id).encode()
    stream = hmac.new(enc, context, hashlib.sha256).digest()[:len(raw)]
    body = bytes(a ^ b for a, b in zip(raw, stream))
    tag = hmac.new(mac, context + body, hashlib.sha256).digest()[:16]
    return _PREFIX + base64.urlsafe_b64encode(nonce + body + tag).decode()


def unseal(sealed: str, user_id: int, secret_key: str) -> bytes:
    if not sealed.startswith(_PREFIX):
        raise SealError("unknown format")
    try:
        blob = base64.urlsafe_b64decode(sealed[len(_PREFIX):].encode())
    except (ValueError, TypeError):
        raise SealError("not base64") from None
    nonce, body, tag = blob[:8], blob[8:-16], blob[-16:]
    enc, mac = _keys(secret_key)
    context = nonce + str(user_id).encode()
    if not hmac.compare_digest(tag, hmac.new(mac, context + body, hashlib.sha256).digest()[:16]):
        raise SealError("tag does not match")
    stream = hmac.new(enc, context, hashlib.sha256).digest()[:len(body)]
    return bytes(a ^ b for a, b in zip(body, stream))


def new_secret() -> bytes:
    return secrets.token_bytes(SECRET_BYTES)


def as_text(raw: bytes) -> str:
    """Base32, as authenticator apps want it typed in."""
    return base64.b32encode(raw).decode().rstrip("=")


def provisioning_uri(raw: bytes, username: str) -> str:
    return pyotp.TOTP(as_text(raw)).provisioning_uri(name=username, issuer_name=ISSUER)


def matching_step(raw: bytes, code: str, now: datetime) -> int | None:
    """The time step whose code `code` is (current ± DRIFT_STEPS), or None."""
    code = (code or "").strip().replace(" ", "")
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(as_text(raw))
    current = totp.timecode(now)
    found = None
    for offset in range(-DRIFT_STEPS, DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(current + offset), code):
            found = current + offset  # keep looping: constant work whichever step matched
    return found


def step_used(session: Session, user_id: int, step: int, now: datetime) -> bool:
    """Whether this person already used this step (replay), from their recent security events."""
    window = timedelta(seconds=30 * (2 * DRIFT_STEPS + 2))
    rows = session.scalars(select(SecurityEvent.details).where(
        SecurityEvent.user_id == user_id, SecurityEvent.created_at >= now - window,
        SecurityEvent.event.in_(_USED_EVENTS)))
    return any((d or {}).get("totp_step") == step for d in rows)


def verify(session: Session, user: User, code: str, now: datetime, secret_key: str) -> int | None:
    """The step of a valid, unused code from the user's enrolled app, or None."""
    if not user.totp_secret:
        return None
    try:
        raw = unseal(user.totp_secret, user.id, secret_key)
    except SealError:
        return None
    step = matching_step(raw, code, now)
    if step is None or step_used(session, user.id, step, now):
        return None
    return step


def enrol(session: Session, user: User, raw: bytes, code: str, now: datetime, secret_key: str,
          ip: str = "") -> bool:
    """Store the secret if `code` proves the app has it; False (nothing stored) otherwise."""
    step = matching_step(raw, code, now)
    if step is None:
        log(session, "totp_enrol_failed", now=now, user=user, ip=ip, outcome="refused")
        return False
    user.totp_secret = seal(raw, user.id, secret_key)
    log(session, "totp_enrolled", now=now, user=user, ip=ip, totp_step=step)
    return True


def remove(session: Session, user: User, now: datetime, *, by: User, ip: str = "") -> None:
    """Drop a person's second factor (lost phone: the security administrator; or their own
    optional one). They enrol again at their next sign-in if they must have one."""
    user.totp_secret = None
    log(session, "totp_removed", now=now, user=by, ip=ip, target=user.username,
        target_id=user.id)
