//! `[storage]`: the database URL (inline or from the environment), durability and retention. Checked: the URL's
//! scheme, a password written inline in it, and the durability's value.

use serde::Deserialize;

use super::{Env, Report};

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// `sqlite://path.db` (default) or `postgres://…`. May also come from `url_env`.
    pub url: String,
    pub url_env: Option<String>,
    /// `full` (fsync every commit) or `normal` (survives a process crash, not a power cut).
    pub durability: String,
    /// Delivered outbox rows and closed alerts older than this are pruned.
    pub retention_hours: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            url: "sqlite://sluice.db".into(),
            url_env: None,
            durability: "full".into(),
            retention_hours: 24 * 7,
        }
    }
}

/// Checks `[storage]` and returns the database URL (empty when `url_env` names an unset variable).
pub(super) fn check(raw: &StorageConfig, text: &str, env: &dyn Env, p: &mut Report<'_>) -> String {
    let storage_url = match &raw.url_env {
        Some(var) => match env.var(var) {
            Some(url) => url,
            None => {
                p(
                    None,
                    format!("storage.url_env names ${var}, which is not set"),
                    "export the variable or use storage.url",
                );
                String::new()
            }
        },
        None => raw.url.clone(),
    };
    if !storage_url.is_empty()
        && !storage_url.starts_with("sqlite:")
        && !storage_url.starts_with("postgres://")
        && !storage_url.starts_with("postgresql://")
    {
        p(
            None,
            format!("storage.url {storage_url:?} is neither sqlite: nor postgres://"),
            "use sqlite://sluice.db (one box) or postgres://user@host/db (replicas)",
        );
    }
    if raw.url_env.is_none() {
        if let Some(password) = url::Url::parse(&storage_url)
            .ok()
            .and_then(|u| u.password().map(str::to_owned))
        {
            let line = text.find(&storage_url).or_else(|| text.find(&password));
            p(
                line.map(|at| at..at),
                "storage.url has its database password inline: secrets in config files end up in git".into(),
                "remove it from the URL, change the password, and give the whole URL through storage.url_env \
                 (e.g. url_env = \"SLUICE_DATABASE_URL\"), or keep it in ~/.pgpass or PGPASSWORD",
            );
        }
    }
    if !matches!(raw.durability.as_str(), "full" | "normal") {
        p(
            None,
            format!("storage.durability {:?} is not full or normal", raw.durability),
            "use \"full\" (fsync each commit, the default) or \"normal\" (survives a crash of sluice, not of the machine)",
        );
    }
    storage_url
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use super::super::testing::errors;
    use super::super::Config;

    /// Regression (issue 15, defect 8): every inline secret was refused except the database password.
    #[test]
    fn regression_an_inline_database_password_is_refused_like_every_other_secret() {
        let p = errors("[storage]\nurl = \"postgres://sluice:hunter2@db.internal/sluice\"\n");
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].0, Some(2), "{p:?}");
        assert!(p[0].1.contains("password inline"), "{p:?}");
        assert!(p[0].2.contains("storage.url_env"), "{p:?}");
        assert!(
            !format!("{p:?}").contains("hunter2"),
            "the password is not repeated: {p:?}"
        );
        // A URL without a password (trust, .pgpass, PGPASSWORD) and one from the environment are fine.
        assert!(errors("[storage]\nurl = \"postgres://sluice@db.internal/sluice\"\n").is_empty());
        let env = BTreeMap::from([(
            "DB".to_string(),
            "postgres://sluice:hunter2@db.internal/sluice".to_string(),
        )]);
        assert!(Config::parse("[storage]\nurl_env = \"DB\"\n", Path::new("."), &env).is_ok());
    }

    #[test]
    fn bad_storage_url_is_refused() {
        let p = errors("[storage]\nurl = \"mysql://x\"\n");
        assert!(p[0].2.contains("sqlite://"), "{p:?}");
    }

    #[test]
    fn an_unset_url_env_and_an_unknown_durability_are_refused() {
        let p = errors("[storage]\nurl_env = \"NOPE\"\ndurability = \"sometimes\"\n");
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].1.contains("$NOPE, which is not set"), "{p:?}");
        assert!(p[1].2.contains("\"full\""), "{p:?}");
    }
}
