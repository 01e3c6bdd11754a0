//! Source adapters (being built).
