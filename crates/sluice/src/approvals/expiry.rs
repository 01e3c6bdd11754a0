//! The expiry timer: one leader (the `approvals` lease) asks the database every half second which pending
//! approvals are past their expiry and expires them through [`super::apply`]. The time lives in the database, so
//! an approval that expired while Sluice was down expires at the first tick after the restart, and another replica
//! takes over the timer when the leader dies.

use std::sync::Arc;
use std::time::Duration;

use sluice_domain::approval::Input;
use tokio::sync::watch;

use crate::state::{now_ms, AppState};

const TICK: Duration = Duration::from_millis(500);
const ROLE: &str = "approvals";

pub async fn run_expiry(state: Arc<AppState>, owner: String, shutdown: watch::Receiver<bool>) {
    crate::leader::every(&state, ROLE, &owner, TICK, shutdown, || async {
        let due = match state.store.due_approvals(now_ms(), 100).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "approval timer: cannot read due approvals");
                return;
            }
        };
        for id in due {
            if let Err(e) = super::apply(&state, &id, |_| Input::Expire).await {
                tracing::warn!(approval = %id, error = %e, "approval not expired; next tick tries again");
            }
        }
    })
    .await
}
