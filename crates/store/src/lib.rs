//! Sluice's durable state: the [`Store`] trait of domain verbs (from `sluice-store-core`) and [`open`], which
//! chooses the backend from the URL scheme: `sluice-store-sqlite` (default; one process, WAL, group commit) or
//! `sluice-store-postgres` (several replicas). This crate is the one callers use; it holds no SQL.

use std::sync::Arc;

pub use sluice_store_core::*;

/// Which database a URL names.
enum Backend {
    Sqlite,
    Postgres,
}

fn backend_of(url: &str) -> Result<Backend, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Backend::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Backend::Postgres)
    } else {
        Err(StoreError::Other(format!(
            "unsupported database URL {}: use sqlite://path.db, sqlite::memory: or postgres://user@host/db",
            redact_url(url)
        )))
    }
}

/// Opens the store named by `url` (`sqlite://path.db`, `sqlite::memory:`, `postgres://…`).
///
/// With `opts.migrate` the schema is brought up to date first; without it a schema that is behind or ahead of this
/// binary is refused with [`StoreError::SchemaMismatch`].
pub async fn open(url: &str, opts: &StoreOptions) -> Result<Arc<dyn Store>, StoreError> {
    // Boxed as `Send` here, where lifetimes are concrete: otherwise callers that `tokio::spawn` a task calling `open`
    // hit rustc's "Executor is not general enough" limitation on sqlx futures.
    let fut: BoxFuture<'_, Result<Arc<dyn Store>, StoreError>> = match backend_of(url)? {
        Backend::Sqlite => Box::pin(async move {
            Ok(Arc::new(sluice_store_sqlite::open(url, opts).await?) as Arc<dyn Store>)
        }),
        Backend::Postgres => Box::pin(async move {
            Ok(Arc::new(sluice_store_postgres::open(url, opts).await?) as Arc<dyn Store>)
        }),
    };
    fut.await
}

/// Applies every migration this binary knows that the database lacks (`sluice migrate`).
pub async fn migrate(url: &str) -> Result<MigrationReport, StoreError> {
    let fut: BoxFuture<'_, Result<MigrationReport, StoreError>> = match backend_of(url)? {
        Backend::Sqlite => Box::pin(sluice_store_sqlite::migrate_url(url)),
        Backend::Postgres => Box::pin(sluice_store_postgres::migrate_url(url)),
    };
    fut.await
}
