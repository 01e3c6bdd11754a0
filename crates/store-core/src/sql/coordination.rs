//! Coordination between dispatchers and replicas: lane leases, shared rate limits, leaders, exactly-once keys.

use super::Stmt;

/// Leases lanes whose head is due and not waiting on an unsent post. Binds: 1 owner, 2 now, 3 lease, 4 limit.
/// Dialects: on PostgreSQL several replicas claim at once, so the candidate rows are locked `FOR UPDATE SKIP LOCKED`
/// (nobody waits, no lane is handed out twice); SQLite's one writer needs no row locks.
pub(crate) static CLAIM_LANES: Stmt = Stmt::dialects(
    "UPDATE lanes SET owner = ?1, lease_until_ms = ?2 + ?3
     WHERE lane IN (
         SELECT l.lane FROM lanes l
         JOIN outbox h ON h.id = l.head_id
         LEFT JOIN outbox r ON r.id = h.ref_item_id
         WHERE (l.owner IS NULL OR l.lease_until_ms <= ?2)
           AND h.next_attempt_at_ms <= ?2
           AND (h.ref_item_id IS NULL OR r.state = 'sent')
         ORDER BY h.next_attempt_at_ms, l.lane
         LIMIT ?4)
     RETURNING lane",
    "WITH claimable AS (
         SELECT l.lane FROM lanes l
         JOIN outbox h ON h.id = l.head_id
         LEFT JOIN outbox r ON r.id = h.ref_item_id
         WHERE (l.owner IS NULL OR l.lease_until_ms <= ?2)
           AND h.next_attempt_at_ms <= ?2
           AND (h.ref_item_id IS NULL OR r.state = 'sent')
         ORDER BY h.next_attempt_at_ms, l.lane
         LIMIT ?4
         FOR UPDATE OF l SKIP LOCKED)
     UPDATE lanes SET owner = ?1, lease_until_ms = ?2 + ?3
     FROM claimable WHERE lanes.lane = claimable.lane
     RETURNING lanes.lane",
);

/// Followed by an [`super::in_list`] of lanes from `?3` and `) RETURNING lane`. Binds: 1 lease until, 2 owner.
pub(crate) const RENEW_LEASES: &str =
    "UPDATE lanes SET lease_until_ms = ?1 WHERE owner = ?2 AND lane IN (";

/// Binds: 1 lane, 2 owner.
pub(crate) static RELEASE_LANE: Stmt =
    Stmt::new("UPDATE lanes SET owner = NULL, lease_until_ms = 0 WHERE lane = ?1 AND owner = ?2");

/// Who holds a lease now. Binds: 1 now.
pub(crate) static LEASE_HOLDERS: Stmt = Stmt::new(
    "SELECT DISTINCT owner FROM lanes WHERE owner IS NOT NULL AND lease_until_ms > ?1 ORDER BY owner",
);

/// Ends one holder's leases now. Binds: 1 owner, 2 now.
pub(crate) static EXPIRE_LEASES: Stmt =
    Stmt::new("UPDATE lanes SET lease_until_ms = ?2 WHERE owner = ?1 AND lease_until_ms > ?2");

/// GCRA in one statement: the SET expressions all see the row as it was, so the decision and the new tat agree (on
/// PostgreSQL, ON CONFLICT DO UPDATE also locks the key's row, so replicas take turns). Binds: 1 key, 2 now,
/// 3 interval, 4 tolerance. Dialects: the larger of two values is `MAX(a, b)` in SQLite, `GREATEST(a, b)` in
/// PostgreSQL.
pub(crate) static TAKE_RATE: Stmt = Stmt::dialects(
    "INSERT INTO rate_limits (key, tat_ms, blocked_until_ms, last_allowed) VALUES (?1, ?2 + ?3, 0, TRUE)
     ON CONFLICT (key) DO UPDATE SET
         last_allowed = (rate_limits.blocked_until_ms <= ?2 AND rate_limits.tat_ms - ?2 <= ?4),
         tat_ms = CASE WHEN rate_limits.blocked_until_ms <= ?2 AND rate_limits.tat_ms - ?2 <= ?4
                       THEN MAX(rate_limits.tat_ms, ?2) + ?3 ELSE rate_limits.tat_ms END
     RETURNING tat_ms, blocked_until_ms, last_allowed",
    "INSERT INTO rate_limits (key, tat_ms, blocked_until_ms, last_allowed) VALUES (?1, ?2 + ?3, 0, TRUE)
     ON CONFLICT (key) DO UPDATE SET
         last_allowed = (rate_limits.blocked_until_ms <= ?2 AND rate_limits.tat_ms - ?2 <= ?4),
         tat_ms = CASE WHEN rate_limits.blocked_until_ms <= ?2 AND rate_limits.tat_ms - ?2 <= ?4
                       THEN GREATEST(rate_limits.tat_ms, ?2) + ?3 ELSE rate_limits.tat_ms END
     RETURNING tat_ms, blocked_until_ms, last_allowed",
);

/// Never shortens a block. Binds: 1 key, 2 until. Dialects: `MAX` / `GREATEST`, as in [`TAKE_RATE`].
pub(crate) static BLOCK_RATE: Stmt = Stmt::dialects(
    "INSERT INTO rate_limits (key, tat_ms, blocked_until_ms, last_allowed) VALUES (?1, 0, ?2, FALSE)
     ON CONFLICT (key) DO UPDATE SET
         blocked_until_ms = MAX(rate_limits.blocked_until_ms, excluded.blocked_until_ms)",
    "INSERT INTO rate_limits (key, tat_ms, blocked_until_ms, last_allowed) VALUES (?1, 0, ?2, FALSE)
     ON CONFLICT (key) DO UPDATE SET
         blocked_until_ms = GREATEST(rate_limits.blocked_until_ms, excluded.blocked_until_ms)",
);

/// Binds: 1 role, 2 owner, 3 now, 4 ttl.
pub(crate) static TRY_LEAD: Stmt = Stmt::new(
    "INSERT INTO leaders (role, owner, until_ms) VALUES (?1, ?2, ?3 + ?4)
     ON CONFLICT (role) DO UPDATE SET owner = excluded.owner, until_ms = excluded.until_ms
         WHERE leaders.owner = excluded.owner OR leaders.until_ms <= ?3
     RETURNING owner",
);

/// Binds: 1 role, 2 owner.
pub(crate) static RESIGN: Stmt = Stmt::new("DELETE FROM leaders WHERE role = ?1 AND owner = ?2");

/// Concurrent inserts of one key: the later ones take the conflict path (on PostgreSQL after the first commits),
/// where the unexpired row makes the WHERE false and nothing is returned. Binds: 1 key, 2 now, 3 ttl.
pub(crate) static FIRST_TIME: Stmt = Stmt::new(
    "INSERT INTO once_keys (key, expires_at_ms) VALUES (?1, ?2 + ?3)
     ON CONFLICT (key) DO UPDATE SET expires_at_ms = excluded.expires_at_ms
         WHERE once_keys.expires_at_ms <= ?2
     RETURNING key",
);
