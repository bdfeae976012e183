"""Verifies a Portcullis access token as another service would: with PyJWT, from the
server's JWKS, never holding a signing key (docs/verifying-tokens.md).

    python verify_token.py BASE_URL ISSUER AUDIENCE TOKEN

Prints the verified claims as JSON and exits 0, or prints the reason and exits 1.
"""

import json
import sys

import jwt


def verify(base_url, issuer, audience, token):
    jwks = jwt.PyJWKClient(f"{base_url}/.well-known/jwks.json")
    # The key is picked by the token's `kid`; only EdDSA is accepted, so a token signed
    # any other way (or with `alg: none`) is refused before its claims are read.
    key = jwks.get_signing_key_from_jwt(token)
    header = jwt.get_unverified_header(token)
    if header.get("typ") != "at+jwt":
        raise jwt.InvalidTokenError(f"not an access token: typ {header.get('typ')!r}")
    return jwt.decode(
        token,
        key.key,
        algorithms=["EdDSA"],
        issuer=issuer,
        audience=audience,
        options={"require": ["exp", "iat", "sub", "iss", "aud"]},
    )


def main():
    base_url, issuer, audience, token = sys.argv[1:5]
    try:
        claims = verify(base_url, issuer, audience, token)
    except jwt.PyJWTError as error:
        print(f"refused: {error}")
        sys.exit(1)
    print(json.dumps(claims))


if __name__ == "__main__":
    main()
