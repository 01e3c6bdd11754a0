//! The outbox rows the workflows write beside their own state, in their own transactions.

use crate::db::{args, Arg, Conn};
use crate::sql::outbox;
use crate::{NewOutboxItem, StoreError};

/// Inserts an outbox item that a workflow (an approval, an action run, a scheduled report) writes with its own
/// state: `owner_id` is the item's event id, so dead letters name it; linked to `ref_item` when given.
pub(super) async fn insert_item(
    c: &mut dyn Conn,
    owner_id: &str,
    item: &NewOutboxItem,
    ref_item: Option<i64>,
    now_ms: i64,
) -> Result<i64, StoreError> {
    let args_json = serde_json::to_string(&item.args)
        .map_err(|e| StoreError::Other(format!("outbox args: {e}")))?;
    c.one(
        &outbox::INSERT_ITEM,
        args![
            owner_id,
            &item.lane,
            &item.team,
            &item.channel,
            &item.method,
            Arg::Json(&args_json),
            ref_item.is_some(),
            ref_item,
            "pending",
            now_ms,
            None::<&str>,
            None::<i64>
        ],
    )
    .await?
    .get(0)
}
