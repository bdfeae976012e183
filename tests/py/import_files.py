"""Writes the files `portcullis import` is tested with (tests/e2e/import.rs), with
password hashes made by implementations independent of Portcullis: Python's `bcrypt`
package and Django's PBKDF2 formula through `hashlib`.

    import_files.py OUT_DIR

OUT_DIR gets:
  users.jsonl    accounts as an ioweyou/authapi/Django export would give them
  users.csv      more, as CSV
  rejects.jsonl  one good record among bad ones (line numbers are asserted)
  data.db        a PocketBase 0.21 data file: its `_collections` table and an auth
                 collection `users` with the schema PocketBase creates, in WAL mode
  accounts.json  every account that must log in: login, password, file, format
"""

import base64
import hashlib
import json
import os
import sqlite3
import sys

import bcrypt


def bcrypt_hash(password, cost, prefix):
    """bcrypt with `prefix` `$2a$`, `$2b$` or `$2y$`: Python's bcrypt writes the first
    two; PHP's `$2y$` is the `$2b$` algorithm under another marker."""
    marker = b"2a" if prefix == "$2a$" else b"2b"
    made = bcrypt.hashpw(password.encode(), bcrypt.gensalt(cost, prefix=marker)).decode()
    return prefix + made[len("$2b$"):]


def django_hash(password, iterations=10_000, salt="pepperedSalt1234"):
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations)
    return f"pbkdf2_sha256${iterations}${salt}${base64.b64encode(digest).decode()}"


def main(out):
    accounts = []

    def account(login, password, source, fmt):
        accounts.append({"login": login, "password": password, "file": source, "format": fmt})

    jsonl = [
        {"email": "Ada@Example.com", "username": "ada", "name": "Ada Lovelace",
         "password": "analytical engine 1843", "cost": 10, "prefix": "$2b$",
         "created_at": "2019-03-04T05:06:07Z"},
        {"email": "grace@example.com", "username": "grace", "name": "Grace Hopper",
         "password": "a ship in port is safe", "cost": 4, "prefix": "$2a$"},
        {"email": "alan@example.com", "name": "Alan Turing",
         "password": "on computable numbers", "cost": 5, "prefix": "$2y$",
         "must_change_password": False},
        {"email": "linus@example.com", "username": "linus", "name": "Linus",
         "password": "talk is cheap show me", "django": True},
    ]
    with open(os.path.join(out, "users.jsonl"), "w") as f:
        for row in jsonl:
            password = row.pop("password")
            if row.pop("django", False):
                row["password_hash"] = django_hash(password)
                fmt = "pbkdf2_sha256"
            else:
                row["password_hash"] = bcrypt_hash(password, row.pop("cost"), row.pop("prefix"))
                fmt = "bcrypt"
            row["legacy_id"] = len(accounts) + 1  # an export's extra field: ignored
            f.write(json.dumps(row) + "\n")
            account(row["email"], password, "users.jsonl", fmt)
        # Moved in without a password: no password logs in until a reset.
        f.write(json.dumps({"email": "nopass@example.com", "username": "nopass",
                            "password_hash": None}) + "\n")

    with open(os.path.join(out, "users.csv"), "w") as f:
        f.write("email,username,name,password_hash,created_at,must_change_password\n")
        password = "margaret hamilton apollo"
        f.write(f"margaret@example.com,margaret,Margaret Hamilton,"
                f"{bcrypt_hash(password, 4, '$2b$')},2018-01-01T00:00:00+02:00,false\n")
        account("margaret", password, "users.csv", "bcrypt")
        password = "barbara liskov substitution"
        f.write(f"barbara@example.com,,\"Liskov, Barbara\",{django_hash(password, 2000)},,\n")
        account("barbara@example.com", password, "users.csv", "pbkdf2_sha256")

    with open(os.path.join(out, "rejects.jsonl"), "w") as f:
        good = "katherine johnson orbits"
        rows = [
            {"email": "katherine@example.com", "password_hash": bcrypt_hash(good, 4, "$2b$")},
            {"email": "not an address", "password_hash": None},
            {"email": "md5@example.com", "password_hash": "md5$abc$0123456789abcdef"},
            {"email": "KATHERINE@example.com", "password_hash": None},
            {"username": "no_email_here"},
        ]
        for row in rows:
            f.write(json.dumps(row) + "\n")
        account("katherine@example.com", good, "rejects.jsonl", "bcrypt")

    write_pocketbase(os.path.join(out, "data.db"), account)

    with open(os.path.join(out, "accounts.json"), "w") as f:
        json.dump(accounts, f, indent=1)


# PocketBase 0.21's `_collections` (migrations/1640988000_init.go) and the table it
# makes for an auth collection: its system fields, the default `name`/`avatar`, and
# the fields the pocketbase dialect's application adds (`language`, `location`, `unit`).
POCKETBASE_SCHEMA = """
CREATE TABLE `_collections` (
    `id`         TEXT PRIMARY KEY NOT NULL,
    `system`     BOOLEAN DEFAULT FALSE NOT NULL,
    `type`       TEXT DEFAULT "base" NOT NULL,
    `name`       TEXT UNIQUE NOT NULL,
    `schema`     JSON DEFAULT "[]" NOT NULL,
    `indexes`    JSON DEFAULT "[]" NOT NULL,
    `listRule`   TEXT DEFAULT NULL,
    `viewRule`   TEXT DEFAULT NULL,
    `createRule` TEXT DEFAULT NULL,
    `updateRule` TEXT DEFAULT NULL,
    `deleteRule` TEXT DEFAULT NULL,
    `options`    JSON DEFAULT "{}" NOT NULL,
    `created`    TEXT DEFAULT (strftime('%Y-%m-%d %H:%M:%fZ')) NOT NULL,
    `updated`    TEXT DEFAULT (strftime('%Y-%m-%d %H:%M:%fZ')) NOT NULL
);
CREATE TABLE `users` (
    `id` TEXT PRIMARY KEY DEFAULT ('r'||lower(hex(randomblob(7)))) NOT NULL,
    `avatar` TEXT DEFAULT '' NOT NULL,
    `created` TEXT DEFAULT (strftime('%Y-%m-%d %H:%M:%fZ')) NOT NULL,
    `email` TEXT DEFAULT '' NOT NULL,
    `emailVisibility` BOOLEAN DEFAULT FALSE NOT NULL,
    `lastResetSentAt` TEXT DEFAULT '' NOT NULL,
    `lastVerificationSentAt` TEXT DEFAULT '' NOT NULL,
    `name` TEXT DEFAULT '' NOT NULL,
    `passwordHash` TEXT NOT NULL,
    `tokenKey` TEXT NOT NULL,
    `updated` TEXT DEFAULT (strftime('%Y-%m-%d %H:%M:%fZ')) NOT NULL,
    `username` TEXT NOT NULL,
    `verified` BOOLEAN DEFAULT FALSE NOT NULL,
    -- The fields a wanderer-style application adds to its users collection.
    `language` TEXT DEFAULT '' NOT NULL,
    `location` JSON DEFAULT NULL,
    `unit` TEXT DEFAULT '' NOT NULL
);
CREATE UNIQUE INDEX `__pb_users_auth__username_idx` ON `users` (`username`);
CREATE UNIQUE INDEX `__pb_users_auth__email_idx` ON `users` (`email`) WHERE `email` != '';
CREATE UNIQUE INDEX `__pb_users_auth__tokenKey_idx` ON `users` (`tokenKey`);
CREATE TABLE `posts` (`id` TEXT PRIMARY KEY NOT NULL, `title` TEXT DEFAULT '' NOT NULL);
"""


def write_pocketbase(path, account):
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(POCKETBASE_SCHEMA)
    schema = json.dumps([
        {"system": False, "id": "users_name", "name": "name", "type": "text",
         "required": False, "presentable": False, "unique": False,
         "options": {"min": None, "max": None, "pattern": ""}},
        {"system": False, "id": "users_avatar", "name": "avatar", "type": "file",
         "required": False, "presentable": False, "unique": False,
         "options": {"mimeTypes": ["image/jpeg", "image/png"], "thumbs": None,
                     "maxSelect": 1, "maxSize": 5242880, "protected": False}},
    ])
    options = json.dumps({"allowEmailAuth": True, "allowOAuth2Auth": True,
                          "allowUsernameAuth": True, "exceptEmailDomains": None,
                          "manageRule": None, "minPasswordLength": 8,
                          "onlyEmailDomains": None, "onlyVerified": False,
                          "requireEmail": False})
    db.execute(
        "INSERT INTO _collections (id, system, type, name, schema, indexes, listRule, "
        "viewRule, createRule, updateRule, deleteRule, options) VALUES "
        "('_pb_users_auth_', 0, 'auth', 'users', ?, '[]', 'id = @request.auth.id', "
        "'id = @request.auth.id', '', 'id = @request.auth.id', 'id = @request.auth.id', ?)",
        (schema, options),
    )
    db.execute("INSERT INTO _collections (id, type, name) VALUES ('pbc_posts', 'base', 'posts')")
    users = [
        ("r1a2b3c4d5e6f70", "hiker@example.com", "hiker", "Trail Hiker", 1,
         "switchbacks all the way"),
        ("r0000000000000b", "", "summit_only", "", 0, "no email just a summit"),
        ("rzzzzzzzzzzzzzz", "camper@example.com", "users41235", "Camper", 0,
         "tents and marshmallows"),
    ]
    for record_id, email, username, name, verified, password in users:
        db.execute(
            "INSERT INTO users (id, created, email, name, passwordHash, tokenKey, updated, "
            "username, verified, emailVisibility, language, location, unit) VALUES "
            "(?, '2024-01-15 10:20:30.123Z', ?, ?, ?, ?, '2024-02-01 00:00:00.000Z', ?, ?, "
            "?, ?, ?, ?)",
            (record_id, email, name, bcrypt_hash(password, 10, "$2a$"),
             f"key-{record_id}", username, verified, verified, "de" if verified else "",
             json.dumps({"lat": 47.17, "lon": 8.52, "name": "Zug"}) if verified else None,
             "imperial" if verified else ""),
        )
        account(username, password, "data.db", "bcrypt")
    db.commit()
    db.close()


if __name__ == "__main__":
    main(sys.argv[1])
