//! GitLab (stub).
use crate::{Headers, Parsed, Source, SourceError};
use sluice_slack::Secret;
pub const NAME: &str = "gitlab";
pub struct GitLab {
    secret: Option<Secret>,
}
impl GitLab {
    pub fn new(secret: Option<Secret>) -> Self {
        GitLab { secret }
    }
}
impl Source for GitLab {
    fn name(&self) -> &'static str {
        NAME
    }
    fn parse(&self, h: &Headers, _b: &[u8]) -> Result<Parsed, SourceError> {
        crate::verify::gitlab_token(self.secret.as_ref(), h.get("X-Gitlab-Token"))?;
        Ok(Parsed::default())
    }
}
