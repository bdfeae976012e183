//! The password hashes of the applications Portcullis takes over, verified so that
//! their users keep their passwords: bcrypt (`$2a$`, `$2b$`, `$2y$`, cost 4–31: the
//! ioweyou and authapi applications, PocketBase) and Django's PBKDF2
//! (`pbkdf2_sha256$<iterations>$<salt>$<base64>`). Never used to store a password: one
//! verified by these is re-hashed with argon2id by the caller
//! ([`portcullis_domain::PasswordVerdict::ValidNeedsRehash`]).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::Sha256;
use subtle::ConstantTimeEq as _;

/// More PBKDF2 iterations than any Django release has used (1,000,000 in 5.0) by ten:
/// a stored hash cannot make a login cost more than that.
const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;

/// The bcrypt costs any bcrypt accepts (2⁴ to 2³¹ rounds).
const BCRYPT_COSTS: std::ops::RangeInclusive<u32> = 4..=31;

/// A stored hash in a foreign format, read.
#[derive(Debug)]
pub(crate) enum ForeignHash<'a> {
    Bcrypt(&'a str),
    DjangoPbkdf2 {
        iterations: u32,
        salt: &'a str,
        expected: Vec<u8>,
    },
}

/// `hash` read as a foreign format: `None` when it is in none of them (an argon2 PHC
/// string, for one), an error when it is one of them but damaged.
pub(crate) fn parse(hash: &str) -> Option<Result<ForeignHash<'_>, String>> {
    if let Some(rest) = ["$2a$", "$2b$", "$2y$"]
        .iter()
        .find_map(|prefix| hash.strip_prefix(prefix))
    {
        return Some(parse_bcrypt(rest).map(|()| ForeignHash::Bcrypt(hash)));
    }
    let rest = hash.strip_prefix("pbkdf2_sha256$")?;
    Some(parse_django(rest))
}

impl ForeignHash<'_> {
    /// The format's name, as reports show it.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Bcrypt(_) => "bcrypt",
            Self::DjangoPbkdf2 { .. } => "pbkdf2_sha256",
        }
    }
}

/// Checks what follows `$2b$`: a two-digit cost, `$`, then 22 characters of salt and
/// 31 of hash in bcrypt's base64 alphabet.
fn parse_bcrypt(rest: &str) -> Result<(), String> {
    let (cost, encoded) = rest
        .split_once('$')
        .ok_or("bcrypt wants $2b$<cost>$<salt and hash>")?;
    let cost_ok = cost.len() == 2
        && cost
            .parse()
            .is_ok_and(|cost: u32| BCRYPT_COSTS.contains(&cost));
    if !cost_ok {
        return Err(format!(
            "bcrypt cost must be two digits, {} to {}",
            BCRYPT_COSTS.start(),
            BCRYPT_COSTS.end()
        ));
    }
    let alphabet = |c: char| c.is_ascii_alphanumeric() || c == '.' || c == '/';
    if encoded.len() != 53 || !encoded.chars().all(alphabet) {
        return Err("bcrypt salt and hash must be 53 characters of bcrypt's base64".into());
    }
    Ok(())
}

fn parse_django(rest: &str) -> Result<ForeignHash<'_>, String> {
    let mut parts = rest.split('$');
    let (Some(iterations), Some(salt), Some(encoded), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("pbkdf2_sha256 wants iterations$salt$hash".into());
    };
    let iterations: u32 = iterations
        .parse()
        .ok()
        .filter(|n| (1..=MAX_PBKDF2_ITERATIONS).contains(n))
        .ok_or_else(|| format!("pbkdf2_sha256 iterations must be 1 to {MAX_PBKDF2_ITERATIONS}"))?;
    if salt.is_empty() {
        return Err("pbkdf2_sha256 without a salt".into());
    }
    let expected = BASE64
        .decode(encoded)
        .map_err(|e| format!("pbkdf2_sha256 hash: {e}"))?;
    if !(16..=64).contains(&expected.len()) {
        return Err("pbkdf2_sha256 hash of an unexpected length".into());
    }
    Ok(ForeignHash::DjangoPbkdf2 {
        iterations,
        salt,
        expected,
    })
}

/// Whether `password` matches, compared in constant time. bcrypt reads at most 72
/// bytes of a password, as every bcrypt that made these hashes did.
pub(crate) fn verify(password: &str, hash: &ForeignHash<'_>) -> Result<bool, String> {
    match hash {
        ForeignHash::Bcrypt(hash) => {
            bcrypt::verify(password, hash).map_err(|e| format!("bcrypt hash: {e}"))
        }
        ForeignHash::DjangoPbkdf2 {
            iterations,
            salt,
            expected,
        } => {
            let mut derived = vec![0u8; expected.len()];
            pbkdf2::pbkdf2_hmac::<Sha256>(
                password.as_bytes(),
                salt.as_bytes(),
                *iterations,
                &mut derived,
            );
            Ok(derived.ct_eq(expected).into())
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const PASSWORD: &str = "correct horse battery staple";

    /// Made by Python's `bcrypt` 5.0.0 (`hashpw(PASSWORD, gensalt(rounds, prefix))`; the
    /// `$2y$` one is a `$2b$` hash with PHP's marker, the same algorithm) and by
    /// Django's formula, `hashlib.pbkdf2_hmac("sha256", PASSWORD, salt, 1000)`.
    const VECTORS: [&str; 5] = [
        "$2a$04$3z29Ix5bETSlqvIzG57Hj.bWQ0F/q2H/HN/RpXdogsvNTBMV.BWS.",
        "$2b$04$D4gC.v40mwaT26GpN1/nSeoG6AoZxjmX61Sz6WYQKTl3ramMxpgZC",
        "$2b$10$AtCWD0IYm/fHQh3nqBO69ekB6zc1ra1XkfgDcijuDRgiZiY43Jdxq",
        "$2y$05$eqlRkGYyjLqUhcq/7nJS9eYiAUQSnjHuB3wZcCFecjpzlSOjUPSR6",
        "pbkdf2_sha256$1000$seasalt1234$JlBQ/OWmu3PcCFg2koQd315wDykzd702rqDsH8M7iWI=",
    ];

    #[test]
    fn hashes_made_by_other_implementations_verify() {
        for vector in VECTORS {
            let hash = parse(vector).unwrap().unwrap();
            assert!(verify(PASSWORD, &hash).unwrap(), "{vector}");
            assert!(
                !verify("correct horse battery stapler", &hash).unwrap(),
                "{vector}"
            );
            assert!(!verify("", &hash).unwrap(), "{vector}");
        }
    }

    #[test]
    fn argon2_and_unknown_formats_are_not_foreign() {
        for other in [
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
            "md5$x$y",
            "plain",
        ] {
            assert!(parse(other).is_none(), "{other}");
        }
    }

    #[test]
    fn damaged_foreign_hashes_are_errors_not_mismatches() {
        for damaged in [
            "pbkdf2_sha256$1000$salt",
            "pbkdf2_sha256$lots$salt$JlBQ/OWmu3PcCFg2koQd315wDykzd702rqDsH8M7iWI=",
            "pbkdf2_sha256$0$salt$JlBQ/OWmu3PcCFg2koQd315wDykzd702rqDsH8M7iWI=",
            "pbkdf2_sha256$99999999$salt$JlBQ/OWmu3PcCFg2koQd315wDykzd702rqDsH8M7iWI=",
            "pbkdf2_sha256$1000$$JlBQ/OWmu3PcCFg2koQd315wDykzd702rqDsH8M7iWI=",
            "pbkdf2_sha256$1000$salt$not base64!",
            "pbkdf2_sha256$1000$salt$c2hvcnQ=",
        ] {
            assert!(parse(damaged).unwrap().is_err(), "{damaged}");
        }
        let good = "AtCWD0IYm/fHQh3nqBO69ekB6zc1ra1XkfgDcijuDRgiZiY43Jdxq";
        for damaged in [
            "$2b$10$AtCWD0IYm/fHQh3nqBO69e".to_owned(),
            format!("$2b$99${good}"),
            format!("$2b$03${good}"),
            format!("$2b$1${good}"),
            format!("$2b$10${good}x"),
            format!("$2b$10${}!", &good[..52]),
            format!("$2b$10{good}"),
        ] {
            assert!(parse(&damaged).unwrap().is_err(), "{damaged}");
        }
    }

    #[test]
    fn formats_are_named() {
        assert_eq!(parse(VECTORS[0]).unwrap().unwrap().name(), "bcrypt");
        assert_eq!(parse(VECTORS[4]).unwrap().unwrap().name(), "pbkdf2_sha256");
    }
}
