//! The audit trail of what callers can repeat at any rate (refusals, live viewing), bounded.
//!
//! Failed logins and permission refusals belong in the audit log: misuse detection and auditors
//! read them to see guessing and probing; so does who watched a camera live.  But anyone can cause them, anonymous callers
//! included, so writing one entry per attempt would let a flood grow the log without bound.
//! Instead, within a fixed window, the first refusal of each key (what, who, from where) is
//! written at once and the rest are only counted; when the window ends, each key that was
//! repeated gets one summary entry with its count. Keys are capped per address and per window,
//! beyond which refusals fold into a wildcard key, so a window writes at most
//! `2 × (MAX_KEYS + addresses folded)` entries whatever the traffic.

use std::collections::HashMap;
use std::sync::Mutex;
use vigil_audit::{AuditAction, NewAuditEntry};

/// Length of a counting window.
pub const WINDOW_MS: i64 = 60_000;
/// Distinct keys counted per window; beyond, refusals of an action fold into one key.
pub const MAX_KEYS: usize = 512;
/// Distinct names one address may have counted per window; beyond, that address's
/// refusals fold into one key (a caller cycling through names).
pub const MAX_NAMES_PER_ADDRESS: usize = 16;

/// What a refusal is counted under.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AuditKey {
    pub action: AuditAction,
    /// The user name tried or held, `*` once folded.
    pub name: String,
    /// The client address, or the route refused; `*` once folded.
    pub place: String,
}

#[derive(Debug)]
struct Counted {
    /// The first entry of the key in this window, the template of its summary.
    first: NewAuditEntry,
    repeats: u64,
}

#[derive(Debug, Default)]
struct Window {
    index: i64,
    counts: HashMap<AuditKey, Counted>,
    names_per_place: HashMap<String, usize>,
}

/// Counts refusals per window and decides which are written.
#[derive(Debug, Default)]
pub struct BoundedAudit {
    window: Mutex<Window>,
}

/// What to write now: possibly the refusal itself, and the summaries of the window that ended.
#[derive(Debug, Default)]
pub struct ToWrite {
    pub entries: Vec<NewAuditEntry>,
}

impl BoundedAudit {
    /// Records one refusal at `now_ms`; `entry` is the full entry it would have on its own.
    pub fn record(&self, key: AuditKey, entry: NewAuditEntry, now_ms: i64) -> ToWrite {
        let mut window = self.window.lock().unwrap_or_else(|p| p.into_inner());
        let mut to_write = ToWrite {
            entries: roll(&mut window, now_ms),
        };
        let key = fold(&mut window, key);
        match window.counts.get_mut(&key) {
            Some(counted) => counted.repeats += 1,
            None => {
                let mut first = entry;
                if key.name == "*" || key.place == "*" {
                    first.request = folded_request(&first.request, &key);
                }
                to_write.entries.push(first.clone());
                window.counts.insert(key, Counted { first, repeats: 0 });
            }
        }
        to_write
    }

    /// The summaries of a window that has ended by `now_ms` (the server calls this on a timer,
    /// so the count of a burst is written even if no refusal follows it).
    pub fn flush(&self, now_ms: i64) -> Vec<NewAuditEntry> {
        let mut window = self.window.lock().unwrap_or_else(|p| p.into_inner());
        roll(&mut window, now_ms)
    }
}

fn roll(window: &mut Window, now_ms: i64) -> Vec<NewAuditEntry> {
    let index = now_ms.div_euclid(WINDOW_MS);
    if index == window.index {
        return Vec::new();
    }
    let ended = std::mem::take(&mut window.counts);
    window.names_per_place.clear();
    window.index = index;
    ended
        .into_values()
        .filter(|counted| counted.repeats > 0)
        .map(|counted| summary(counted.first, counted.repeats))
        .collect()
}

/// Folds a key that would exceed the caps into its wildcard.
fn fold(window: &mut Window, key: AuditKey) -> AuditKey {
    if window.counts.contains_key(&key) {
        return key;
    }
    if window.counts.len() >= MAX_KEYS {
        return AuditKey {
            action: key.action,
            name: "*".into(),
            place: "*".into(),
        };
    }
    let names = window.names_per_place.entry(key.place.clone()).or_default();
    if *names >= MAX_NAMES_PER_ADDRESS {
        return AuditKey {
            action: key.action,
            name: "*".into(),
            place: key.place,
        };
    }
    *names += 1;
    key
}

fn folded_request(request: &serde_json::Value, key: &AuditKey) -> serde_json::Value {
    let mut request = request.clone();
    if let Some(object) = request.as_object_mut() {
        object.insert(
            "folded".into(),
            serde_json::json!({ "name": key.name, "place": key.place }),
        );
    }
    request
}

fn summary(mut entry: NewAuditEntry, repeats: u64) -> NewAuditEntry {
    if let Some(object) = entry.request.as_object_mut() {
        object.insert("repeats".into(), repeats.into());
        object.insert("window_ms".into(), WINDOW_MS.into());
    }
    entry.outcome.detail = format!(
        "{} more like this in the same {} s window",
        repeats,
        WINDOW_MS / 1000
    );
    entry
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_audit::{Actor, Outcome, Target};

    fn failed_login(name: &str, client: &str) -> (AuditKey, NewAuditEntry) {
        let key = AuditKey {
            action: AuditAction::LoginFailed,
            name: name.into(),
            place: client.into(),
        };
        let entry = NewAuditEntry {
            actor: Actor {
                user_id: None,
                user_name: name.into(),
            },
            action: AuditAction::LoginFailed,
            target: Target {
                kind: "session".into(),
                id: client.into(),
            },
            case_ref: None,
            reason: String::new(),
            request: serde_json::json!({ "client": client }),
            probe_image: None,
            outcome: Outcome::refused("login refused"),
        };
        (key, entry)
    }

    #[test]
    fn a_flood_of_one_key_writes_its_first_attempt_and_one_summary_with_the_count() {
        let log = BoundedAudit::default();
        let mut written = 0;
        for attempt in 0..10_000 {
            let (key, entry) = failed_login("alice", "203.0.113.9");
            written += log.record(key, entry, 1_000 + attempt).entries.len();
        }
        assert_eq!(written, 1);
        let summaries = log.flush(1_000 + WINDOW_MS);
        assert_eq!(summaries.len(), 1);
        assert_eq!(summaries[0].request["repeats"], 9_999);
        assert!(log.flush(1_000 + 2 * WINDOW_MS).is_empty());
    }

    #[test]
    fn cycling_names_from_one_address_or_many_addresses_stays_bounded() {
        let log = BoundedAudit::default();
        let mut written = 0;
        for i in 0..100_000 {
            let (key, entry) = failed_login(&format!("user{i}"), &format!("198.51.100.{}", i % 7));
            written += log.record(key, entry, 5_000).entries.len();
        }
        // 16 names per address, then one folded key per address.
        assert_eq!(written, 7 * (MAX_NAMES_PER_ADDRESS + 1));
        let mut flood = 0;
        for i in 0..100_000u32 {
            let address = format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255);
            let (key, entry) = failed_login("bob", &address);
            flood += log.record(key, entry, WINDOW_MS + 5_000).entries.len();
        }
        // the first call also wrote the previous window's summaries
        assert!(flood <= MAX_KEYS + 1 + 7 * 2, "{flood}");
    }

    #[test]
    fn distinct_keys_in_a_window_are_each_written_once() {
        let log = BoundedAudit::default();
        for name in ["a", "b", "a", "b", "c"] {
            let (key, entry) = failed_login(name, "192.0.2.1");
            log.record(key, entry, 10);
        }
        let summaries = log.flush(WINDOW_MS + 10);
        // only a and b repeated
        assert_eq!(summaries.len(), 2);
    }
}
