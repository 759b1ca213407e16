"""Device profiles for seeded audiences: the SQL that gives each new recipient its devices.

- `single`: one device per user, platform `fake`, a 32-character token "fake:<recipient id>:<hex>"
  (the profile of every benchmark before issue 22).
- `realistic`: 1 device for 75% of users, 2 for 20%, 3 for 5%; per device 60% Android (FCM), 35% iOS
  (APNs), 5% web (Web Push). Tokens have their platform's length and alphabet: FCM
  "<22-char instance id>:APA91b<base64url>" of 152-165 characters, APNs 64 hex digits, Web Push the
  browser's subscription JSON (an endpoint of 195-205 characters, a p256dh key of 87 and an auth
  secret of 22, base64url) as apps/providers/webpush.py reads it.

Each seeded device has a key, recipient id * 4 + slot (0-2), written as 11 digits at a fixed place
in its token ("seed<key>" at the start of FCM tokens and of the endpoint's last path segment,
"5eed<key>" at the start of APNs tokens), so that tokens are unique, the same on every re-run, and
the fake provider can count them per device in a byte array (fake_server.seeded_key).
Shares come from multiplicative hashes of the recipient id and the key, so they are spread evenly
and repeatable; 2% of devices are inactive in both profiles.
"""

from __future__ import annotations

PROFILES = ("realistic", "single")
DEFAULT_PROFILE = "realistic"  # for the benchmarks and the seed_audience command

# External ids per profile, so that two profiles never share (and silently mix) recipients.
EXTERNAL_ID_PREFIX = {"single": "seed-", "realistic": "seedr-"}

_SINGLE = """
    INSERT INTO audience_device (recipient_id, platform, token, is_active, created_at, deactivated_reason)
    SELECT id, 'fake', 'fake:' || lpad(id::text, 10, '0') || ':' || substr(md5(id::text), 1, 16),
           ((id * 2654435761) %% 50) <> 7, now(), ''
    FROM new_recipients
    ON CONFLICT (token) DO NOTHING
"""


def _b64(salt: str) -> str:
    """86 base64url characters derived from the device key (PostgreSQL wraps base64 at 76: drop it)."""
    return f"translate(encode(sha512(convert_to(key || '{salt}', 'UTF8')), 'base64'), E'+/=\\n', '-_')"


_FCM = (f"'seed' || key || substr({_b64('a')}, 1, 7) || ':APA91b'"
        f" || substr({_b64('a')} || {_b64('b')}, 8, (123 + o %% 14)::int)")
_APNS = "'5eed' || key || substr(encode(sha256(convert_to(key, 'UTF8')), 'hex'), 1, 49)"
_FCM_WEB = "https://fcm.googleapis.com/fcm/send/"
_MOZILLA = "https://updates.push.services.mozilla.com/wpush/v2/"
_WEBPUSH = f"""'{{"endpoint":"' || CASE WHEN o %% 2 = 0 THEN '{_FCM_WEB}' ELSE '{_MOZILLA}' END || 'seed' || key
    || substr({_b64('c')} || {_b64('d')}, 1,
              (180 + o %% 11 - CASE WHEN o %% 2 = 0 THEN {len(_FCM_WEB)} ELSE {len(_MOZILLA)} END)::int)
    || '","expirationTime":null,"keys":{{"p256dh":"B' || substr('ABCDEFGHIJKLMNOP', (1 + o %% 16)::int, 1)
    || substr({_b64('e')}, 1, 85) || '","auth":"' || substr({_b64('f')}, 1, 22) || '"}}}}'"""
# p256dh is an uncompressed P-256 point, 0x04 and 64 bytes: "B" and one of A-P make the 0x04.


def _hash(value: str, multiplier: int, modulo: int) -> str:
    """Knuth's multiplicative hash: the middle bits of value * multiplier mod 2**32, so that shares do
    not follow the pattern of the keys (recipient id * 4 + slot)."""
    return f"((({value} * {multiplier}) %% 4294967296) >> 12) %% {modulo}"


_REALISTIC = f"""
    INSERT INTO audience_device (recipient_id, platform, token, is_active, created_at, deactivated_reason)
    SELECT recipient_id, platform,
           CASE platform WHEN 'fcm' THEN {_FCM} WHEN 'apns' THEN {_APNS} ELSE {_WEBPUSH} END,
           {_hash('o', 2654435761, 50)} <> 7, now(), ''
    FROM (
        SELECT r.id AS recipient_id, k.o, lpad(k.o::text, 11, '0') AS key,
               CASE WHEN {_hash('k.o', 2246822519, 100)} < 60 THEN 'fcm'
                    WHEN {_hash('k.o', 2246822519, 100)} < 95 THEN 'apns' ELSE 'webpush' END AS platform
        FROM new_recipients AS r,
             generate_series(0, CASE WHEN {_hash('r.id', 3266489917, 100)} < 75 THEN 0
                                     WHEN {_hash('r.id', 3266489917, 100)} < 95 THEN 1 ELSE 2 END) AS slot,
             LATERAL (SELECT r.id * 4 + slot AS o) AS k
    ) AS d
    ON CONFLICT (token) DO NOTHING
"""

DEVICES_SQL = {"single": _SINGLE, "realistic": _REALISTIC}


def check_profile(name: str) -> str:
    if name not in DEVICES_SQL:
        raise ValueError(f"unknown device profile {name!r}: choose from {', '.join(PROFILES)}")
    return name
