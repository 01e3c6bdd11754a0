//! GitHub (stub).
use crate::{Headers, Parsed, Source, SourceError};
use sluice_slack::Secret;
pub const NAME: &str = "github";
pub struct GitHub {
    secret: Option<Secret>,
}
impl GitHub {
    pub fn new(secret: Option<Secret>) -> Self {
        GitHub { secret }
    }
}
impl Source for GitHub {
    fn name(&self) -> &'static str {
        NAME
    }
    fn parse(&self, h: &Headers, b: &[u8]) -> Result<Parsed, SourceError> {
        crate::verify::github_signature(self.secret.as_ref(), h.get("X-Hub-Signature-256"), b)?;
        Ok(Parsed::default())
    }
}
