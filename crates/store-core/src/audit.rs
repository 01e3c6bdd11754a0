//! The audit chain, written once for both backends: how an [`AuditRecord`]'s hash is computed and how a run of
//! stored records is checked ([`ChainCheck`]). The backends only store rows and serialise appends.

use sha2::{Digest, Sha256};

use crate::{AuditRecord, NewAudit, StoreError};

/// `prev_hash` of the first record.
pub(crate) const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Rows read per round trip by `verify_audit`.
pub(crate) const VERIFY_PAGE: usize = 1000;

/// `value` with every object's keys in sorted order, so the serialisation does not depend on insertion order (or
/// on whether some other crate in the build turned on serde_json's `preserve_order`).
fn canonical(value: &serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut out = serde_json::Map::new();
            for k in keys {
                out.insert(k.clone(), canonical(&map[k]));
            }
            serde_json::Value::Object(out)
        }
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.iter().map(canonical).collect())
        }
        other => other.clone(),
    }
}

/// Canonical JSON text of a value (sorted keys, no whitespace).
pub(crate) fn canonical_json(value: &serde_json::Value) -> Result<String, StoreError> {
    serde_json::to_string(&canonical(value))
        .map_err(|e| StoreError::Other(format!("cannot serialise audit detail: {e}")))
}

/// The hash of record `id` with fields `a`, chained after `prev_hash`.
pub(crate) fn chain_hash(prev_hash: &str, id: i64, a: &NewAudit) -> Result<String, StoreError> {
    let fields = serde_json::json!({
        "id": id,
        "at_ms": a.at_ms,
        "actor": a.actor,
        "team": a.team,
        "action": a.action,
        "target": a.target,
        "result": a.result,
        "detail": a.detail,
    });
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(canonical_json(&fields)?.as_bytes());
    Ok(hex::encode(h.finalize()))
}

/// Builds the record appended after (`last_id`, `last_hash`).
pub(crate) fn next_record(
    last_id: i64,
    last_hash: &str,
    a: NewAudit,
) -> Result<AuditRecord, StoreError> {
    let id = last_id + 1;
    let hash = chain_hash(last_hash, id, &a)?;
    Ok(AuditRecord {
        id,
        at_ms: a.at_ms,
        actor: a.actor,
        team: a.team,
        action: a.action,
        target: a.target,
        result: a.result,
        detail: a.detail,
        prev_hash: last_hash.to_string(),
        hash,
    })
}

/// Walks the chain page by page, in id order.
pub(crate) struct ChainCheck {
    expect_id: i64,
    expect_prev: String,
}

impl ChainCheck {
    pub(crate) fn new() -> Self {
        ChainCheck {
            expect_id: 1,
            expect_prev: GENESIS.to_string(),
        }
    }

    /// The id after the last record checked (where the next page starts).
    pub(crate) fn next_id(&self) -> i64 {
        self.expect_id
    }

    /// Checks the next record; returns the id at which the chain breaks, if it does here. A gap in ids (a deleted
    /// row) breaks at the first missing id; an edited row breaks at that row (its hash no longer matches); a
    /// re-hashed edited row breaks at its successor (whose `prev_hash` no longer matches).
    pub(crate) fn check(&mut self, r: &AuditRecord) -> Result<Option<i64>, StoreError> {
        if r.id != self.expect_id {
            return Ok(Some(self.expect_id));
        }
        let fields = NewAudit {
            at_ms: r.at_ms,
            actor: r.actor.clone(),
            team: r.team.clone(),
            action: r.action.clone(),
            target: r.target.clone(),
            result: r.result.clone(),
            detail: r.detail.clone(),
        };
        if r.prev_hash != self.expect_prev || chain_hash(&r.prev_hash, r.id, &fields)? != r.hash {
            return Ok(Some(r.id));
        }
        self.expect_id += 1;
        self.expect_prev = r.hash.clone();
        Ok(None)
    }

    /// After the last row: the head (the last appended id and hash, kept in its own row) must match, otherwise the
    /// newest records were deleted.
    pub(crate) fn finish(&self, head_id: i64, head_hash: &str) -> Option<i64> {
        let last = self.expect_id - 1;
        if head_id != last || (head_id > 0 && head_hash != self.expect_prev) {
            Some(last.min(head_id) + 1)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(result: &str) -> NewAudit {
        NewAudit {
            at_ms: 1,
            actor: "U1".into(),
            team: "T1".into(),
            action: "alert.ack".into(),
            target: "C1:1.1".into(),
            result: result.into(),
            detail: serde_json::json!({"b": 1, "a": [ {"y": 2, "x": 1} ]}),
        }
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_depth() {
        let v = serde_json::json!({"b": 1, "a": [ {"y": 2, "x": 1} ]});
        assert_eq!(
            canonical_json(&v).expect("json"),
            r#"{"a":[{"x":1,"y":2}],"b":1}"#
        );
    }

    #[test]
    fn hash_covers_prev_hash_id_and_every_field() {
        let base = chain_hash(GENESIS, 1, &entry("ok")).expect("hash");
        assert_eq!(base.len(), 64);
        assert_ne!(base, chain_hash("x", 1, &entry("ok")).expect("hash"));
        assert_ne!(base, chain_hash(GENESIS, 2, &entry("ok")).expect("hash"));
        assert_ne!(
            base,
            chain_hash(GENESIS, 1, &entry("refused: no")).expect("hash")
        );
        let mut d = entry("ok");
        d.detail = serde_json::json!({"b": 2});
        assert_ne!(base, chain_hash(GENESIS, 1, &d).expect("hash"));
    }
}
