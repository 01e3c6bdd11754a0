//! Runs of `[[action]]`s.

use super::Stmt;

/// Binds: 1 id, 2 action, 3 target, 4 actor, 5 team, 6 channel, 7 ts, 8 reply, 9 card (JSON text), 10 started at.
/// Returns nothing when a run of the same action on the same target is still running (or the id is taken).
pub(crate) static START: Stmt = Stmt::new(
    "INSERT INTO action_runs (id, action, target, actor, team, channel, ts, reply, card, state, started_at_ms)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'running', ?10)
     ON CONFLICT DO NOTHING RETURNING id",
);

/// Binds: 1 new state, 2 status, 3 result, 4 finished at, 5 id. Changes a running run only; returns its target.
pub(crate) static FINISH: Stmt = Stmt::new(
    "UPDATE action_runs SET state = ?1, status = ?2, result = ?3, finished_at_ms = ?4
     WHERE id = ?5 AND state = 'running' RETURNING target",
);

/// Binds: 1 id, 2 now. A failed run runs again (its dead-lettered call was replayed), unless another run of the
/// same action on the same target is running; returns its target.
pub(crate) static REOPEN: Stmt = Stmt::new(
    "UPDATE action_runs SET state = 'running', status = NULL, result = NULL, finished_at_ms = NULL,
            started_at_ms = ?2
     WHERE id = ?1 AND state = 'failed'
       AND NOT EXISTS (SELECT 1 FROM action_runs o
                       WHERE o.action = action_runs.action AND o.target = action_runs.target
                         AND o.state = 'running')
     RETURNING target",
);

/// Binds: 1 target. Its runs, oldest first.
pub(crate) static OF_TARGET: Stmt = Stmt::new(
    "SELECT id, action, target, actor, team, channel, ts, reply, card, state, status, result, started_at_ms,
            finished_at_ms
     FROM action_runs WHERE target = ?1 ORDER BY started_at_ms, id",
);

/// Binds: 1 id.
pub(crate) static GET: Stmt = Stmt::new(
    "SELECT id, action, target, actor, team, channel, ts, reply, card, state, status, result, started_at_ms,
            finished_at_ms
     FROM action_runs WHERE id = ?1",
);

/// Binds: 1 action, 2 target. The run that is running now, if any.
pub(crate) static RUNNING: Stmt =
    Stmt::new("SELECT id FROM action_runs WHERE action = ?1 AND target = ?2 AND state = 'running'");
