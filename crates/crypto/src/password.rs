//! Password hashing with argon2id, stored as PHC strings.

use argon2::password_hash::{self, Output, ParamsString, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use portcullis_domain::{HashError, HashScheme, PasswordHasher, PasswordVerdict};
use portcullis_domain::{Password, PasswordHash};

use crate::foreign;

/// Salt length in bytes: 128 bits, as RFC 9106 recommends.
const SALT_LEN: usize = 16;

/// The largest memory cost accepted, configured or read from a stored hash: 4 GiB.
/// Verifying re-runs argon2 with the stored hash's own parameters, so without a ceiling
/// one corrupt row could make the process try to allocate terabytes and abort.
const MAX_MEMORY_KIB: u32 = 4 * 1024 * 1024;

/// argon2id cost parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Argon2Params {
    /// Memory cost in KiB. At least 8 × `parallelism`, at most 4 GiB.
    pub memory_kib: u32,
    /// Number of passes over the memory. At least 1.
    pub iterations: u32,
    /// Degree of parallelism (lanes). 1 to 2²⁴ − 1.
    pub parallelism: u32,
}

impl Default for Argon2Params {
    /// OWASP's recommended argon2id configuration: m = 19 MiB, t = 2, p = 1.
    fn default() -> Self {
        Self {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

impl Argon2Params {
    /// Validates the parameters the way argon2 does, plus the memory ceiling, checking
    /// `parallelism` first because argon2 0.5 computes `8 × p` unchecked and so
    /// panics (in builds with overflow checks) on a huge `p`.
    fn to_argon2(self) -> Result<Params, HashError> {
        if self.parallelism > Params::MAX_P_COST {
            return Err(HashError::Failed(format!(
                "argon2 parallelism must be at most {}",
                Params::MAX_P_COST
            )));
        }
        if self.memory_kib > MAX_MEMORY_KIB {
            return Err(HashError::Failed(format!(
                "argon2 memory must be at most {MAX_MEMORY_KIB} KiB"
            )));
        }
        Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map_err(|e| HashError::Failed(format!("invalid argon2 parameters: {e}")))
    }
}

/// The [`PasswordHasher`] port over argon2id (version 0x13), with a fresh 16-byte salt
/// from the operating system for every hash.
#[derive(Clone)]
pub struct Argon2Hasher {
    params: Argon2Params,
    argon2: Argon2<'static>,
}

impl Argon2Hasher {
    /// A hasher with `params`. Fails when argon2 would refuse them (e.g. less than
    /// 8 KiB of memory per lane, zero iterations or lanes), so a bad configuration
    /// stops the server at start-up rather than at the first login.
    pub fn new(params: Argon2Params) -> Result<Self, HashError> {
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.to_argon2()?);
        Ok(Self { params, argon2 })
    }

    /// Whether a hash this hasher just verified was made with other settings than the
    /// current ones. A PHC string without a version is read by argon2 as 0x13 but
    /// still counts as outdated, so that it gets rewritten in the canonical form.
    fn is_current(&self, stored: &password_hash::PasswordHash<'_>, params: &Params) -> bool {
        stored.algorithm == Algorithm::Argon2id.ident()
            && stored.version == Some(Version::V0x13.into())
            && params.m_cost() == self.params.memory_kib
            && params.t_cost() == self.params.iterations
            && params.p_cost() == self.params.parallelism
            && params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN)
                == Params::DEFAULT_OUTPUT_LEN
    }
}

impl std::fmt::Debug for Argon2Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Argon2Hasher")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

/// argon2's working memory, kept between hashes: a hashing thread owns one and reuses
/// it for every hash, so hashing memory does not grow with the number of requests.
#[derive(Debug, Default)]
pub(crate) struct Memory {
    blocks: Vec<Block>,
    /// How many times a buffer was allocated for this memory (tests check reuse).
    pub(crate) allocations: usize,
}

impl Memory {
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.blocks.len()
    }

    /// Runs `work` on at least `count` blocks: this memory's own, grown to `count` if
    /// it is smaller. A hash made with a larger memory cost than the configured one
    /// (an old hash being verified) gets a buffer of its own, freed when done, so the
    /// memory kept stays at the configured cost.
    fn with<T>(&mut self, count: usize, keep: usize, work: impl FnOnce(&mut [Block]) -> T) -> T {
        if count > keep.max(self.blocks.len()) {
            self.allocations += 1;
            return work(&mut vec![Block::default(); count]);
        }
        if self.blocks.len() < count {
            self.allocations += 1;
            self.blocks = vec![Block::default(); keep.max(count)];
        }
        work(&mut self.blocks[..count])
    }
}

impl Argon2Hasher {
    /// Its parameters.
    pub fn params(&self) -> Argon2Params {
        self.params
    }

    /// argon2 blocks (1 KiB each) a hash with the configured parameters needs.
    pub(crate) fn block_count(&self) -> usize {
        self.argon2_params().map_or(0, |p| p.block_count())
    }

    fn argon2_params(&self) -> Result<Params, HashError> {
        self.params.to_argon2()
    }

    /// [`PasswordHasher::hash`] in `memory`.
    pub(crate) fn hash_in(
        &self,
        password: &Password,
        memory: &mut Memory,
    ) -> Result<PasswordHash, HashError> {
        let failed = |e: &dyn std::fmt::Display| HashError::Failed(e.to_string());
        let mut salt = [0u8; SALT_LEN];
        getrandom::fill(&mut salt)
            .map_err(|e| HashError::Failed(format!("no randomness for a salt: {e}")))?;
        let salt_string = SaltString::encode_b64(&salt).map_err(|e| failed(&e))?;
        let params = self.argon2_params()?;
        let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
        memory
            .with(params.block_count(), self.block_count(), |blocks| {
                self.argon2.hash_password_into_with_memory(
                    password.expose().as_bytes(),
                    &salt,
                    &mut out,
                    blocks,
                )
            })
            .map_err(|e| failed(&e))?;
        let phc = password_hash::PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&params).map_err(|e| failed(&e))?,
            salt: Some(salt_string.as_salt()),
            hash: Some(Output::new(&out).map_err(|e| failed(&e))?),
        };
        Ok(PasswordHash::new(phc.to_string()))
    }

    /// [`PasswordHasher::scheme`]: the checks [`Self::verify_in`] makes before
    /// hashing.
    pub(crate) fn scheme_of(&self, hash: &PasswordHash) -> Option<HashScheme> {
        if let Some(foreign) = foreign::parse(hash.as_str()) {
            return foreign.ok().map(|foreign| HashScheme {
                name: foreign.name(),
                current: false,
            });
        }
        let stored = password_hash::PasswordHash::new(hash.as_str()).ok()?;
        let (Some(salt), Some(_)) = (stored.salt, stored.hash) else {
            return None;
        };
        let salt_len = salt.decode_b64(&mut [0u8; 64]).ok()?.len();
        if salt_len < argon2::MIN_SALT_LEN {
            return None;
        }
        let params = stored_params(&stored).ok()?;
        let name = match Algorithm::try_from(stored.algorithm).ok()? {
            Algorithm::Argon2d => "argon2d",
            Algorithm::Argon2i => "argon2i",
            Algorithm::Argon2id => "argon2id",
        };
        if let Some(version) = stored.version {
            Version::try_from(version).ok()?;
        }
        Some(HashScheme {
            name,
            current: self.is_current(&stored, &params),
        })
    }

    /// [`PasswordHasher::verify`] in `memory`.
    pub(crate) fn verify_in(
        &self,
        password: &Password,
        hash: &PasswordHash,
        memory: &mut Memory,
    ) -> Result<PasswordVerdict, HashError> {
        let unreadable = |why: &dyn std::fmt::Display| {
            HashError::Failed(format!("unreadable password hash: {why}"))
        };
        if let Some(foreign) = foreign::parse(hash.as_str()) {
            let foreign = foreign.map_err(|e| unreadable(&e))?;
            let matches =
                foreign::verify(password.expose(), &foreign).map_err(|e| unreadable(&e))?;
            return Ok(if matches {
                PasswordVerdict::ValidNeedsRehash
            } else {
                PasswordVerdict::Invalid
            });
        }
        let stored = password_hash::PasswordHash::new(hash.as_str()).map_err(|e| unreadable(&e))?;
        // The password-hash crate reports a missing salt or output as a wrong
        // password; it is a damaged hash, which the port says is an error.
        let (Some(salt), Some(expected)) = (stored.salt, stored.hash) else {
            return Err(unreadable(&"no salt or no hash output"));
        };
        let params = stored_params(&stored).map_err(|e| unreadable(&e))?;
        let algorithm = Algorithm::try_from(stored.algorithm).map_err(|e| unreadable(&e))?;
        let version = match stored.version {
            Some(version) => Version::try_from(version).map_err(|e| unreadable(&e))?,
            None => Version::V0x13,
        };
        let mut salt_bytes = [0u8; 64];
        let salt = salt
            .decode_b64(&mut salt_bytes)
            .map_err(|e| unreadable(&e))?;
        let mut out = [0u8; Output::MAX_LENGTH];
        let out = &mut out[..expected.len()];
        memory
            .with(params.block_count(), self.block_count(), |blocks| {
                Argon2::new(algorithm, version, params.clone()).hash_password_into_with_memory(
                    password.expose().as_bytes(),
                    salt,
                    out,
                    blocks,
                )
            })
            .map_err(|e| unreadable(&e))?;
        // `Output`'s `Eq` is constant-time.
        if Output::new(out).map_err(|e| unreadable(&e))? != expected {
            return Ok(PasswordVerdict::Invalid);
        }
        if self.is_current(&stored, &params) {
            Ok(PasswordVerdict::Valid)
        } else {
            Ok(PasswordVerdict::ValidNeedsRehash)
        }
    }
}

/// Hashes on the calling thread, with working memory allocated for each hash. The
/// server runs hashes on a [`crate::HashPool`] instead, which bounds how many run at
/// once and reuses their memory.
impl PasswordHasher for Argon2Hasher {
    /// Hashes on the caller's thread, without a bound: never busy.
    fn is_busy(&self) -> bool {
        false
    }

    fn hash(&self, password: &Password) -> Result<PasswordHash, HashError> {
        self.hash_in(password, &mut Memory::default())
    }

    fn verify(
        &self,
        password: &Password,
        hash: &PasswordHash,
    ) -> Result<PasswordVerdict, HashError> {
        self.verify_in(password, hash, &mut Memory::default())
    }

    fn scheme(&self, hash: &PasswordHash) -> Option<HashScheme> {
        self.scheme_of(hash)
    }
}

/// The argon2 parameters of a stored hash, refusing any that would make argon2 panic
/// or allocate beyond [`MAX_MEMORY_KIB`] before it is asked to run with them.
fn stored_params(stored: &password_hash::PasswordHash<'_>) -> Result<Params, String> {
    let decimal = |name: &str| stored.params.get_decimal(name);
    if decimal("p").is_some_and(|p| p > Params::MAX_P_COST) {
        return Err("parallelism out of range".into());
    }
    if decimal("m").is_some_and(|m| m > MAX_MEMORY_KIB) {
        return Err("memory cost out of range".into());
    }
    Params::try_from(stored).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use argon2::PasswordHasher as _;

    use super::*;

    /// Cheap parameters so the tests run fast; the defaults get one test of their own.
    const FAST: Argon2Params = Argon2Params {
        memory_kib: 1024,
        iterations: 1,
        parallelism: 1,
    };

    fn fast() -> Argon2Hasher {
        Argon2Hasher::new(FAST).unwrap()
    }

    fn pw(text: &str) -> Password {
        Password::new(text)
    }

    #[test]
    fn round_trip_with_fast_params() {
        let hasher = fast();
        let hash = hasher.hash(&pw("correct horse")).unwrap();
        assert!(hash.as_str().starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        assert_eq!(
            hasher.verify(&pw("correct horse"), &hash).unwrap(),
            PasswordVerdict::Valid
        );
    }

    #[test]
    fn default_params_are_owasp_and_round_trip() {
        let params = Argon2Params::default();
        assert_eq!(
            params,
            Argon2Params {
                memory_kib: 19456,
                iterations: 2,
                parallelism: 1
            }
        );
        let hasher = Argon2Hasher::new(params).unwrap();
        let hash = hasher.hash(&pw("correct horse")).unwrap();
        assert!(hash.as_str().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert_eq!(
            hasher.verify(&pw("correct horse"), &hash).unwrap(),
            PasswordVerdict::Valid
        );
    }

    #[test]
    fn salt_is_fresh_and_sixteen_bytes() {
        let hasher = fast();
        let a = hasher.hash(&pw("same")).unwrap();
        let b = hasher.hash(&pw("same")).unwrap();
        assert_ne!(a, b);
        let parsed = password_hash::PasswordHash::new(a.as_str()).unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(parsed.salt.unwrap().decode_b64(&mut buf).unwrap().len(), 16);
        assert_eq!(parsed.hash.unwrap().len(), 32);
    }

    #[test]
    fn wrong_password_is_invalid() {
        let hasher = fast();
        let hash = hasher.hash(&pw("correct horse")).unwrap();
        for wrong in ["correct horsE", "", "correct horse "] {
            assert_eq!(
                hasher.verify(&pw(wrong), &hash).unwrap(),
                PasswordVerdict::Invalid
            );
        }
    }

    #[test]
    fn passwords_are_compared_after_normalisation() {
        let hasher = fast();
        let hash = hasher.hash(&pw("ﬁsh")).unwrap();
        assert_eq!(
            hasher.verify(&pw("fish"), &hash).unwrap(),
            PasswordVerdict::Valid
        );
    }

    #[test]
    fn unreadable_hashes_are_errors() {
        let hasher = fast();
        let salt = "c29tZXNhbHRzb21lc2FsdA";
        let out = "c29tZXNhbHRzb21lc2FsdHNvbWVzYWx0c29tZXNhbHQ";
        let cases = [
            String::new(),
            "not a hash".into(),
            "$argon2id$".into(),
            // No salt / no output: password-hash would call these a wrong password.
            "$argon2id$v=19$m=1024,t=1,p=1".into(),
            format!("$argon2id$v=19$m=1024,t=1,p=1${salt}"),
            // Another scheme altogether.
            format!("$pbkdf2-sha256$i=1000${salt}${out}"),
            // Unknown argon2 version and parameter.
            format!("$argon2id$v=42$m=1024,t=1,p=1${salt}${out}"),
            format!("$argon2id$v=19$m=1024,t=1,p=1,x=3${salt}${out}"),
            // Parameters argon2 refuses, or that would panic or exhaust memory.
            format!("$argon2id$v=19$m=1024,t=0,p=1${salt}${out}"),
            format!("$argon2id$v=19$m=4,t=1,p=1${salt}${out}"),
            format!("$argon2id$v=19$m=1024,t=1,p=4294967295${salt}${out}"),
            format!("$argon2id$v=19$m=4294967295,t=1,p=1${salt}${out}"),
            // Salt too short for argon2 (4 bytes).
            format!("$argon2id$v=19$m=1024,t=1,p=1$c2FsdA${out}"),
        ];
        for case in cases.into_iter().chain(["!".into(), "$2b$10$short".into()]) {
            let hash = PasswordHash::new(case.clone());
            let result = hasher.verify(&pw("x"), &hash);
            assert!(result.is_err(), "{case:?} gave {result:?}");
            assert_eq!(hasher.scheme(&hash), None, "{case:?}");
        }
    }

    #[test]
    fn changed_params_need_rehash_only_when_the_password_is_right() {
        let old = fast().hash(&pw("pw")).unwrap();
        for params in [
            Argon2Params {
                memory_kib: 2048,
                ..FAST
            },
            Argon2Params {
                iterations: 2,
                ..FAST
            },
            Argon2Params {
                parallelism: 2,
                ..FAST
            },
        ] {
            let current = Argon2Hasher::new(params).unwrap();
            assert_eq!(
                current.verify(&pw("pw"), &old).unwrap(),
                PasswordVerdict::ValidNeedsRehash,
                "{params:?}"
            );
            assert_eq!(
                current.verify(&pw("other"), &old).unwrap(),
                PasswordVerdict::Invalid
            );
        }
    }

    #[test]
    fn other_algorithm_version_or_length_need_rehash() {
        let hasher = fast();
        let params = FAST.to_argon2().unwrap();
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let other = |algorithm, version, params| {
            let hash = Argon2::new(algorithm, version, params)
                .hash_password(b"pw", &salt)
                .unwrap();
            PasswordHash::new(hash.to_string())
        };
        let argon2i = other(Algorithm::Argon2i, Version::V0x13, params.clone());
        let v10 = other(Algorithm::Argon2id, Version::V0x10, params.clone());
        let long = other(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(1024, 1, 1, Some(64)).unwrap(),
        );
        let current = other(Algorithm::Argon2id, Version::V0x13, params);
        // The same hash with its version field left out.
        let unversioned = PasswordHash::new(current.as_str().replace("$v=19", ""));
        let scheme = |name| {
            Some(HashScheme {
                name,
                current: false,
            })
        };
        let named = [
            (&argon2i, scheme("argon2i")),
            (&v10, scheme("argon2id")),
            (&long, scheme("argon2id")),
            (&unversioned, scheme("argon2id")),
        ];
        for (stale, scheme) in named {
            assert_eq!(hasher.scheme(stale), scheme, "{}", stale.as_str());
            assert_eq!(
                hasher.verify(&pw("pw"), stale).unwrap(),
                PasswordVerdict::ValidNeedsRehash,
                "{}",
                stale.as_str()
            );
            assert_eq!(
                hasher.verify(&pw("nope"), stale).unwrap(),
                PasswordVerdict::Invalid
            );
        }
        assert_eq!(
            hasher.verify(&pw("pw"), &current).unwrap(),
            PasswordVerdict::Valid
        );
        assert_eq!(
            hasher.scheme(&current),
            Some(HashScheme {
                name: "argon2id",
                current: true
            })
        );
    }

    #[test]
    fn foreign_hashes_are_named_and_never_current() {
        let bcrypt = "$2b$04$D4gC.v40mwaT26GpN1/nSeoG6AoZxjmX61Sz6WYQKTl3ramMxpgZC";
        let django = "pbkdf2_sha256$1000$seasalt1234$JlBQ/OWmu3PcCFg2koQd315wDykzd702rqDsH8M7iWI=";
        for (hash, name) in [(bcrypt, "bcrypt"), (django, "pbkdf2_sha256")] {
            assert_eq!(
                fast().scheme(&PasswordHash::new(hash.into())),
                Some(HashScheme {
                    name,
                    current: false
                })
            );
        }
    }

    #[test]
    fn invalid_params_are_rejected() {
        for params in [
            Argon2Params {
                memory_kib: 7,
                ..FAST
            },
            Argon2Params {
                memory_kib: 8,
                parallelism: 2,
                ..FAST
            },
            Argon2Params {
                memory_kib: MAX_MEMORY_KIB + 1,
                ..FAST
            },
            Argon2Params {
                iterations: 0,
                ..FAST
            },
            Argon2Params {
                parallelism: 0,
                ..FAST
            },
            Argon2Params {
                parallelism: u32::MAX,
                ..FAST
            },
        ] {
            assert!(Argon2Hasher::new(params).is_err(), "{params:?}");
        }
    }

    #[test]
    fn debug_shows_params_only() {
        let text = format!("{:?}", fast());
        assert!(text.contains("memory_kib: 1024"), "{text}");
    }
}
