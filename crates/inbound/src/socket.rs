//! Socket Mode (being built).
use crate::Inbound;
use std::sync::Arc;
/// placeholder
pub async fn run_socket_mode(_inbound: Arc<Inbound>) {}
