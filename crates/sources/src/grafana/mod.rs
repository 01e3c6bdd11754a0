//! Grafana (stub).
use crate::{Headers, Parsed, Source, SourceError};
pub const NAME: &str = "grafana";
#[derive(Debug, Clone, Copy, Default)]
pub struct Grafana;
impl Source for Grafana {
    fn name(&self) -> &'static str {
        NAME
    }
    fn parse(&self, _h: &Headers, _b: &[u8]) -> Result<Parsed, SourceError> {
        Ok(Parsed::default())
    }
}
