//! A throwaway PostgreSQL database per test, from `SLUICE_TEST_POSTGRES_URL`.
//!
//! Without the variable the test prints a SKIPPED line and returns; with
//! `SLUICE_REQUIRE_POSTGRES=1` (CI) a missing variable fails the test instead.

use sqlx::{Connection, Executor, PgConnection};

pub struct TestDb {
    pub url: String,
    admin: String,
    name: String,
}

impl TestDb {
    pub async fn create(test: &str) -> Option<TestDb> {
        let Ok(admin) = std::env::var("SLUICE_TEST_POSTGRES_URL") else {
            if std::env::var("SLUICE_REQUIRE_POSTGRES").is_ok() {
                panic!("SLUICE_REQUIRE_POSTGRES is set but SLUICE_TEST_POSTGRES_URL is not");
            }
            {
                use std::io::Write as _;
                let _ = writeln!(std::io::stderr(), "SKIPPED {test}: SLUICE_TEST_POSTGRES_URL not set (e.g. postgres://postgres@127.0.0.1:5432/test)");
            }
            return None;
        };
        let name = format!("sluice_e2e_{}", uuid::Uuid::now_v7().simple());
        let mut conn = PgConnection::connect(&admin)
            .await
            .expect("connect to SLUICE_TEST_POSTGRES_URL");
        conn.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create database");
        let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
        Some(TestDb {
            url: format!("{base}/{name}"),
            admin,
            name,
        })
    }

    pub async fn drop_db(self) {
        if let Ok(mut conn) = PgConnection::connect(&self.admin).await {
            let _ = conn
                .execute(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name).as_str())
                .await;
        }
    }
}
