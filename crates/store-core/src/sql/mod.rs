//! Every statement the store runs, written once, one file per area.
//!
//! Statements use SQLite's numbered placeholders (`?1`); PostgreSQL runs them with `$1`, rewritten once per statement
//! by [`Stmt`]. They are written in the SQL both dialects speak: `NOT flag` for booleans (an INTEGER 0/1 column in
//! SQLite, BOOLEAN in PostgreSQL), `TRUE`/`FALSE` literals, `IS DISTINCT FROM`, `CAST(json AS TEXT)` to read a JSON
//! column (JSONB in PostgreSQL), `INSERT … ON CONFLICT … RETURNING`. Where the dialects truly differ the statement is a
//! [`Stmt::dialects`] pair, and the comment says why:
//! - `claim_lanes`: PostgreSQL's `FOR UPDATE SKIP LOCKED` (replicas claim at once); SQLite has one writer.
//! - `take_rate` / `block_rate`: the larger of two values is `MAX(a, b)` in SQLite and `GREATEST(a, b)` in PostgreSQL.
//! - the audit head is read `FOR UPDATE` on PostgreSQL, which serialises appends across replicas.
//! - the group commit's multi-row INSERTs are `INSERT OR FAIL` on SQLite ([`bulk_insert`]).
//!
//! Locking that only PostgreSQL needs (lane rows, advisory locks on dedup keys) lives in its backend.

pub(crate) mod actions;
pub(crate) mod alerts;
pub(crate) mod approvals;
pub(crate) mod audit;
pub(crate) mod chatops;
pub(crate) mod console;
pub(crate) mod coordination;
pub(crate) mod groups;
pub(crate) mod incidents;
pub(crate) mod outbox;
pub(crate) mod retention;
pub(crate) mod silences;

use crate::db::Dialect;
pub(crate) use crate::db::Stmt;

/// `head` (one of the multi-row `INSERT INTO …` heads) as the group commit runs it in `dialect`.
///
/// On SQLite a statement that writes many rows and may stop half-way on a constraint keeps a statement journal (a
/// copy of every page it changes, so it can undo its own rows); `OR FAIL` stops without undoing them, so none is
/// kept. That changes nothing here: an error in the group commit rolls back its whole transaction. PostgreSQL has
/// no such clause and keeps the head as written.
pub(crate) fn bulk_insert(dialect: Dialect, head: &str) -> std::borrow::Cow<'_, str> {
    match dialect {
        Dialect::Sqlite => head
            .replacen("INSERT INTO", "INSERT OR FAIL INTO", 1)
            .into(),
        Dialect::Postgres => head.into(),
    }
}

/// `(?a, ?a+1, …), (…)`: the VALUES of a multi-row statement of `rows` rows of `cols` columns, placeholders from `?first`.
pub(crate) fn values_list(rows: usize, cols: usize, first: usize) -> String {
    let mut s = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        if r > 0 {
            s.push_str(", ");
        }
        s.push('(');
        for c in 0..cols {
            if c > 0 {
                s.push_str(", ");
            }
            s.push('?');
            s.push_str(&(first + r * cols + c).to_string());
        }
        s.push(')');
    }
    s
}

/// `items` in chunks of at most `max` (a power of two) rows, each a power of two long, largest first: 130 rows at
/// most 64 at a time are 64 + 64 + 2. A multi-row statement built for a chunk then has one of a few shapes, each
/// prepared once and kept in the connection's statement cache; chunks of any length (100 + 30) made a statement no
/// cache held, parsed and planned again in almost every group commit.
pub(crate) fn shaped<T>(items: &[T], max: usize) -> impl Iterator<Item = &[T]> {
    debug_assert!(
        max.is_power_of_two(),
        "chunk bound {max} is not a power of two"
    );
    let mut rest = items;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (chunk, tail) = rest.split_at(1 << rest.len().min(max).ilog2());
        rest = tail;
        Some(chunk)
    })
}

/// `?a, ?a+1, …`: an `IN (…)` list of `n` placeholders from `?first`.
pub(crate) fn in_list(n: usize, first: usize) -> String {
    (first..first + n)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::shaped;

    #[test]
    fn chunks_are_powers_of_two_in_order_and_cover_everything() {
        let items: Vec<usize> = (0..130).collect();
        let lens: Vec<usize> = shaped(&items, 64).map(<[usize]>::len).collect();
        assert_eq!(lens, [64, 64, 2]);
        let again: Vec<usize> = shaped(&items, 64).flatten().copied().collect();
        assert_eq!(again, items);
        let lens: Vec<usize> = shaped(&items[..63], 64).map(<[usize]>::len).collect();
        assert_eq!(lens, [32, 16, 8, 4, 2, 1]);
        assert_eq!(shaped(&items[..0], 64).count(), 0);
    }
}
