//! The consumers of a snapshot, indexed for the auth plugins.
//!
//! Each worker builds one table from the snapshot's `consumers` and shares it (`Rc`) between
//! its key-auth and basic-auth instances. Lookups answer with the consumer's name as an
//! `Rc<str>`, so setting `RequestCtx::consumer` costs a reference count, not an allocation.
//!
//! Secrets are compared in constant time so a caller cannot learn a stored key byte by byte
//! from how long a refusal takes. API keys are found through a map keyed by a 64-bit SipHash of
//! the key (std's `RandomState`, seeded randomly per table) rather than by the key itself: a map
//! keyed by the key would end its probe with an ordinary, early-exit `==` against the stored key.
//! With a random-keyed hash, an attacker cannot choose inputs that land near a stored key, so the
//! only thing the map's timing reveals is whether a 64-bit hash matched, and the final comparison
//! of the key bytes is the constant-time one below.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::rc::Rc;

use aigw_config::Consumer;

/// A stored API key and the consumer it belongs to.
struct KeyEntry {
    key: Box<[u8]>,
    consumer: Rc<str>,
}

/// A stored basic-auth password and the consumer it belongs to.
struct BasicEntry {
    password: Box<[u8]>,
    consumer: Rc<str>,
}

/// Every consumer of one snapshot, indexed by API key and by basic-auth username.
pub struct ConsumerTable {
    hasher: RandomState,
    /// SipHash of the key -> the keys with that hash (almost always one).
    by_key_hash: HashMap<u64, Vec<KeyEntry>>,
    by_username: HashMap<Box<str>, BasicEntry>,
    names: Vec<Rc<str>>,
    name_set: HashSet<Rc<str>>,
}

impl ConsumerTable {
    /// Indexes `consumers`. Empty API keys are skipped (an empty credential is treated as no
    /// credential by the plugins, so it must never match). If two consumers share a key or a
    /// username, which validation should refuse, the first in config order wins.
    pub fn new(consumers: &[Consumer]) -> ConsumerTable {
        let mut table = ConsumerTable {
            hasher: RandomState::new(),
            by_key_hash: HashMap::new(),
            by_username: HashMap::new(),
            names: Vec::with_capacity(consumers.len()),
            name_set: HashSet::with_capacity(consumers.len()),
        };
        for c in consumers {
            table.insert(c);
        }
        table
    }

    fn insert(&mut self, c: &Consumer) {
        let name: Rc<str> = Rc::from(c.name.as_str());
        for key in c.api_keys.iter().filter(|k| !k.0.is_empty()) {
            let entry = KeyEntry {
                key: key.0.as_bytes().into(),
                consumer: name.clone(),
            };
            let hash = self.hasher.hash_one(key.0.as_bytes());
            self.by_key_hash.entry(hash).or_default().push(entry);
        }
        if let Some(basic) = &c.basic_auth {
            let entry = BasicEntry {
                password: basic.password.0.as_bytes().into(),
                consumer: name.clone(),
            };
            self.by_username
                .entry(basic.username.as_str().into())
                .or_insert(entry);
        }
        if self.name_set.insert(name.clone()) {
            self.names.push(name);
        }
    }

    /// The consumer that owns API key `key`, if any.
    pub fn consumer_for_key(&self, key: &[u8]) -> Option<Rc<str>> {
        if key.is_empty() {
            return None;
        }
        let candidates = self.by_key_hash.get(&self.hasher.hash_one(key))?;
        candidates
            .iter()
            .find(|e| ct_eq(&e.key, key))
            .map(|e| e.consumer.clone())
    }

    /// The stored password and consumer name for a basic-auth `username`, if one is configured.
    /// Callers compare the password with [`ct_eq`]; [`ConsumerTable::verify_basic`] does both.
    pub fn basic_credential(&self, username: &str) -> Option<(&[u8], &Rc<str>)> {
        self.by_username
            .get(username)
            .map(|e| (&e.password[..], &e.consumer))
    }

    /// The consumer whose basic-auth credential is exactly `username` / `password`.
    pub fn verify_basic(&self, username: &str, password: &[u8]) -> Option<Rc<str>> {
        let (stored, consumer) = self.basic_credential(username)?;
        ct_eq(stored, password).then(|| consumer.clone())
    }

    /// Every consumer name, in config order, each once.
    pub fn names(&self) -> &[Rc<str>] {
        &self.names
    }

    /// Whether a consumer called `name` exists.
    pub fn contains(&self, name: &str) -> bool {
        self.name_set.contains(name)
    }
}

/// Prints names and counts only: the table holds secrets.
impl fmt::Debug for ConsumerTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsumerTable")
            .field("consumers", &self.names)
            .field(
                "api_keys",
                &self.by_key_hash.values().map(Vec::len).sum::<usize>(),
            )
            .field("basic_users", &self.by_username.len())
            .finish()
    }
}

/// Whether `a == b`, taking a time that depends only on the lengths.
///
/// A length mismatch returns at once: key and password lengths are not what a timing attack
/// is after, and every byte of equal-length inputs is always visited.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // black_box keeps the optimiser from turning the fold into an early-exit comparison.
    std::hint::black_box(diff) == 0
}
