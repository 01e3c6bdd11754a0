//! The dedup-aware ingest algorithm, written once over [`IngestTx`] so both backends apply exactly the same rules.
//!
//! Each backend implements [`IngestTx`] on its open transaction; [`ingest_event`] decides the event's fate
//! (new alert, merged, resolved, or as given), writes the event and its items, and records which lanes gained
//! pending items so the backend can update its lane heads once per transaction. [`ingest_inhibited`] puts inhibition
//! (see [`crate::Inhibit`]) in front of it.

use std::collections::BTreeMap;

use crate::alert::{self, Alert, Effect, Input, Life, State};
use crate::alerting::{alert_root, parse_fate};
use crate::db::{args, Arg, Conn, Row};
use crate::sql::{alerts, groups, outbox, values_list};
use crate::{
    Dedup, Fate, FollowUp, GroupFlush, GroupJoin, InhibitKey, NewEvent, NewOutboxItem, StoreError,
};

pub(crate) struct EventRow<'a> {
    pub id: &'a str,
    pub received_at_ms: i64,
    pub source: &'a str,
    pub body: &'a str,
    pub fate: String,
}

pub(crate) struct ItemRow<'a> {
    pub event_id: &'a str,
    pub item: &'a NewOutboxItem,
    pub args: String,
    pub ref_item_id: Option<i64>,
    pub created_at_ms: i64,
    /// Born dead: the post it refers to is already dead.
    pub dead_reason: Option<String>,
}

/// The writes and reads ingest needs inside one transaction.
#[async_trait::async_trait]
pub(crate) trait IngestTx: Send {
    /// The open alert with `key`.
    async fn open_alert(&mut self, key: &str) -> Result<Option<Alert>, StoreError>;
    /// The latest closed alert with `key`, and when it closed.
    async fn last_closed_alert(&mut self, key: &str) -> Result<Option<(Alert, i64)>, StoreError>;
    /// Closes the alert (it drops its inhibition keys); `ended_at_ms` is the source's end, `by` the event that
    /// resolved it (`None`: it went quiet).
    async fn close_alert(
        &mut self,
        alert_id: i64,
        at_ms: i64,
        ended_at_ms: Option<i64>,
        by: Option<&str>,
    ) -> Result<(), StoreError>;
    /// Writes an open alert as the lifecycle says (a merge, a re-notification or a reopen by `event_id`).
    async fn update_alert(
        &mut self,
        alert_id: i64,
        count: i64,
        last_seen_ms: i64,
        started_at_ms: Option<i64>,
        event_id: &str,
    ) -> Result<(), StoreError>;
    async fn create_alert(
        &mut self,
        key: &str,
        first_event_id: &str,
        at_ms: i64,
        started_at_ms: Option<i64>,
    ) -> Result<i64, StoreError>;
    /// A just created alert never fired: count 0, closed at `at_ms`.
    async fn born_closed(&mut self, alert_id: i64, at_ms: i64) -> Result<(), StoreError>;
    /// The alert's post item in `lane`: its id and, if it is dead, the reason.
    async fn alert_post(
        &mut self,
        alert_id: i64,
        lane: &str,
    ) -> Result<Option<(i64, Option<String>)>, StoreError>;
    async fn add_alert_post(
        &mut self,
        alert_id: i64,
        lane: &str,
        item_id: i64,
    ) -> Result<(), StoreError>;
    /// The alert has a refresh in `lane` that is pending and not yet read by the dispatcher.
    async fn refresh_pending(&mut self, alert_id: i64, lane: &str) -> Result<bool, StoreError>;
    async fn set_refresh(
        &mut self,
        alert_id: i64,
        lane: &str,
        item_id: i64,
    ) -> Result<(), StoreError>;
    /// The alert `event_id` belongs to (see `alerting::alert_root`): the latest alert opened by that event.
    async fn alert_of(&mut self, event_id: &str) -> Result<Option<i64>, StoreError>;
    /// The alert joins the group `g` (created if new; marked changed either way). `first_event_id` becomes the
    /// group's first event if this creates it.
    async fn join_group(
        &mut self,
        g: &GroupJoin,
        first_event_id: &str,
        alert_id: i64,
        now_ms: i64,
    ) -> Result<(), StoreError>;
    /// A group's first event and lane, `None` if the group is not stored.
    async fn group_of(&mut self, group_id: i64) -> Result<Option<(String, String)>, StoreError>;
    /// A group's card (outbox item): its id and, if it is dead, the reason.
    async fn group_post(
        &mut self,
        group_id: i64,
    ) -> Result<Option<(i64, Option<String>)>, StoreError>;
    /// Records a flush on the group row (see [`crate::grouping::FINISH_FLUSH`]).
    async fn finish_flush(
        &mut self,
        f: &GroupFlush,
        post_id: Option<i64>,
        now_ms: i64,
    ) -> Result<(), StoreError>;
    async fn insert_event(&mut self, row: &EventRow<'_>) -> Result<(), StoreError>;
    async fn insert_item(&mut self, row: &ItemRow<'_>) -> Result<i64, StoreError>;
    /// `key` is held by an alert that is open, was last seen at or after `now_ms` minus the window it holds the key
    /// with, has not the dedup key `own`, and, when `key.both_sides`, does not hold it both-sided too.
    async fn key_held(
        &mut self,
        key: &InhibitKey,
        own: Option<&str>,
        now_ms: i64,
    ) -> Result<bool, StoreError>;
    /// The alert holds `keys` from now until it closes (keys it already holds stay as they are).
    async fn hold_keys(
        &mut self,
        alert_id: i64,
        keys: &[InhibitKey],
        window_ms: i64,
    ) -> Result<(), StoreError>;
}

pub(crate) fn to_json<T: serde::Serialize>(what: &str, v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Other(format!("cannot serialise {what}: {e}")))
}

/// The Slack calls an event makes: none for a suppressed event, whatever it carries (it is stored like a dropped one).
pub(crate) fn outbox_of(ev: &NewEvent) -> &[NewOutboxItem] {
    match ev.fate {
        Fate::Suppressed { .. } => &[],
        _ => &ev.outbox,
    }
}

/// The dedup request ingest applies: none for a suppressed event, so muting never opens, bumps or resolves an alert.
pub(crate) fn dedup_of(ev: &NewEvent) -> Option<&Dedup> {
    match ev.fate {
        Fate::Suppressed { .. } => None,
        _ => ev.dedup.as_ref(),
    }
}

/// The follow-up ingest applies: none with a dedup request (that one decides) or for a suppressed event.
pub(crate) fn follow_up_of(ev: &NewEvent) -> Option<&FollowUp> {
    match ev.fate {
        Fate::Suppressed { .. } => None,
        _ if ev.dedup.is_some() => None,
        _ => ev.follow_up.as_ref(),
    }
}

/// The event must go through [`ingest_inhibited`] (it reads alerts or inhibition keys); others can be written in bulk.
pub(crate) fn needs_reads(ev: &NewEvent) -> bool {
    dedup_of(ev).is_some() || follow_up_of(ev).is_some() || !checks_of(ev).is_empty()
}

/// The inhibition keys an event is checked against: only an event that would post can be muted.
pub(crate) fn checks_of(ev: &NewEvent) -> &[InhibitKey] {
    match ev.fate {
        Fate::Queued { .. } => &ev.inhibit.checks,
        _ => &[],
    }
}

/// [`ingest_event`] behind inhibition: an event a held key mutes is ingested as `Suppressed { by: "inhibit:<rule>" }`
/// (so it posts nothing and opens no alert), and a firing alert's keys are recorded once its alert is open.
/// Returns the rule that muted the event, if one did.
pub(crate) async fn ingest_inhibited(
    tx: &mut dyn IngestTx,
    ev: &NewEvent,
    touched: &mut TouchedLanes,
) -> Result<Option<String>, StoreError> {
    if let Some(rule) = inhibited_by(tx, ev).await? {
        // Muted, it is stored like any suppressed event: no Slack call, no alert.
        let fate = Fate::Suppressed {
            by: format!("inhibit:{rule}"),
        };
        tx.insert_event(&EventRow {
            id: &ev.id,
            received_at_ms: ev.received_at_ms,
            source: &ev.source,
            body: ev.body.as_str(),
            fate: to_json("fate", &fate)?,
        })
        .await?;
        return Ok(Some(rule));
    }
    let alert_id = ingest_event(tx, ev, touched).await?;
    if let (Some(d), Some(alert_id)) = (dedup_of(ev), alert_id) {
        // The event opened, merged into or reopened its alert, so the alert is open now. Recording the keys on every
        // firing event, not only the first, keeps them right when the rules change while the alert fires.
        if !d.resolves && !ev.inhibit.provides.is_empty() {
            tx.hold_keys(alert_id, &ev.inhibit.provides, d.window_ms)
                .await?;
        }
    }
    Ok(None)
}

/// The rule of the first key of `ev` that a firing alert holds.
async fn inhibited_by(tx: &mut dyn IngestTx, ev: &NewEvent) -> Result<Option<String>, StoreError> {
    let checks = checks_of(ev);
    if checks.is_empty() {
        return Ok(None);
    }
    let own = dedup_of(ev);
    if let Some(d) = own {
        // It continues an alert whose card is already out (a duplicate within the window, or its resolve): muting it
        // would freeze that card, or leave it firing for ever.
        if let Some(a) = tx.open_alert(&d.key).await? {
            if d.resolves || ev.received_at_ms - a.last_seen_ms <= d.window_ms {
                return Ok(None);
            }
        }
    }
    for key in checks {
        if tx
            .key_held(key, own.map(|d| d.key.as_str()), ev.received_at_ms)
            .await?
        {
            return Ok(Some(key.rule.clone()));
        }
    }
    Ok(None)
}

/// Lanes that gained pending items in this transaction, with the smallest new item id in each.
pub(crate) type TouchedLanes = BTreeMap<String, i64>;

/// Every lane an event could enqueue into, whatever dedup decides (PostgreSQL locks them up front).
pub(crate) fn candidate_lanes(batch: &[NewEvent]) -> Vec<String> {
    let mut lanes: Vec<String> = batch
        .iter()
        .flat_map(|e| {
            outbox_of(e)
                .iter()
                .chain(
                    dedup_of(e)
                        .into_iter()
                        .flat_map(|d| d.on_open.iter().chain(&d.refresh).chain(&d.on_reopen)),
                )
                .chain(follow_up_of(e).into_iter().flat_map(|f| &f.refresh))
        })
        .map(|i| i.lane.clone())
        .collect();
    lanes.sort();
    lanes.dedup();
    lanes
}

/// Where the alert of `d.key` stands, as far as [`alert::decide`] can use it: a closed alert is read only when the
/// event could continue one (a resolve, or a firing event with a reopen window).
async fn load_life(tx: &mut dyn IngestTx, d: &Dedup) -> Result<Life, StoreError> {
    if let Some(a) = tx.open_alert(&d.key).await? {
        return Ok(Life::Open(a));
    }
    if d.resolves || d.reopen_window_ms > 0 {
        if let Some((alert, closed_at_ms)) = tx.last_closed_alert(&d.key).await? {
            return Ok(Life::Closed {
                alert,
                closed_at_ms,
            });
        }
    }
    Ok(Life::None)
}

/// What an event with a dedup request is to its alert's lifecycle.
fn input_of<'e>(ev: &'e NewEvent, d: &Dedup) -> Input<'e> {
    match d.resolves {
        true => Input::Resolved {
            event_id: &ev.id,
            at_ms: ev.received_at_ms,
        },
        false => Input::Fired {
            event_id: &ev.id,
            at_ms: ev.received_at_ms,
            window_ms: d.window_ms,
            reopen_window_ms: d.reopen_window_ms,
            started_at_ms: d.occurred_at_ms,
        },
    }
}

/// Ingests one event: for an event with a dedup request, loads its alert, asks [`alert::decide`] and writes what it
/// says (alert row, fate, which Slack calls, card refreshes); a follow-up refreshes the cards of the alert it names.
pub(crate) async fn ingest_event(
    tx: &mut dyn IngestTx,
    ev: &NewEvent,
    touched: &mut TouchedLanes,
) -> Result<Option<i64>, StoreError> {
    let now = ev.received_at_ms;
    let none: &[NewOutboxItem] = &[];
    let mut fate = ev.fate.clone();
    let mut items: &[NewOutboxItem] = outbox_of(ev);
    let mut refresh: &[NewOutboxItem] = none;
    // The alert the event belongs to (its updates link to that alert's cards), and the one it opens.
    let mut belongs: Option<i64> = None;
    let mut opens: Option<Effect> = None;
    match dedup_of(ev) {
        None => {
            if let Some(f) = follow_up_of(ev) {
                if let Some(id) = tx.alert_of(&f.alert_of).await? {
                    (refresh, belongs) = (&f.refresh, Some(id));
                }
            }
        }
        Some(d) => {
            let life = load_life(tx, d).await?;
            let input = input_of(ev, d);
            let (_, effects) = alert::decide(&State::of(life), &input);
            items = none;
            let ended_at_ms = d.occurred_at_ms;
            for effect in effects {
                match effect {
                    Effect::Fate(f) => fate = f,
                    Effect::Send(alert::Send::Own) => items = outbox_of(ev),
                    Effect::Send(alert::Send::Updates) => items = &d.on_open,
                    Effect::Send(alert::Send::Reopened) => items = &d.on_reopen,
                    Effect::RefreshCards => refresh = &d.refresh,
                    Effect::Belongs { id } => belongs = Some(id),
                    Effect::Close { id, at_ms } => {
                        // Closed by this event when it resolves; a new occurrence closes the old one as gone quiet.
                        let by = d.resolves.then_some(ev.id.as_str());
                        tx.close_alert(id, at_ms, ended_at_ms.filter(|_| d.resolves), by)
                            .await?
                    }
                    Effect::Update {
                        id,
                        count,
                        last_seen_ms,
                        started_at_ms,
                        ..
                    } => {
                        tx.update_alert(id, count, last_seen_ms, started_at_ms, &ev.id)
                            .await?
                    }
                    open @ Effect::Open { .. } => opens = Some(open),
                    Effect::Record { .. }
                    | Effect::AlreadyDecided { .. }
                    | Effect::Silence { .. }
                    | Effect::Escalate
                    | Effect::ReplyResolved => {
                        return Err(StoreError::Other(format!(
                            "the alert lifecycle answered an event with {effect:?}"
                        )))
                    }
                }
            }
        }
    }

    tx.insert_event(&EventRow {
        id: &ev.id,
        received_at_ms: now,
        source: &ev.source,
        body: ev.body.as_str(),
        fate: to_json("fate", &fate)?,
    })
    .await?;

    let mut posts: Vec<(&str, i64)> = Vec::new();
    for item in items {
        let (mut ref_item_id, mut dead_reason) = (None, None);
        if let (true, Some(alert_id)) = (item.ref_post, belongs) {
            if let Some((post_id, post_dead)) = tx.alert_post(alert_id, &item.lane).await? {
                ref_item_id = Some(post_id);
                dead_reason = post_dead.map(|r| ref_dead_reason(post_id, &r));
            }
        }
        let id = tx
            .insert_item(&ItemRow {
                event_id: &ev.id,
                item,
                args: to_json("outbox args", &item.args)?,
                ref_item_id,
                created_at_ms: now,
                dead_reason: dead_reason.clone(),
            })
            .await?;
        if dead_reason.is_none() {
            let head = touched.entry(item.lane.clone()).or_insert(id);
            *head = (*head).min(id);
        }
        if !item.ref_post && !posts.iter().any(|(lane, _)| *lane == item.lane) {
            posts.push((&item.lane, id));
        }
    }

    if let Some(alert_id) = belongs {
        refresh_cards(tx, alert_id, &ev.id, refresh, now, touched).await?;
    }

    let alert_id = match (dedup_of(ev), opens) {
        (
            Some(d),
            Some(Effect::Open {
                started_at_ms,
                closed_at_ms,
            }),
        ) => {
            let alert_id = tx.create_alert(&d.key, &ev.id, now, started_at_ms).await?;
            for (lane, item_id) in posts {
                tx.add_alert_post(alert_id, lane, item_id).await?;
            }
            if let Some(at_ms) = closed_at_ms {
                tx.born_closed(alert_id, at_ms).await?;
                return Ok(None);
            }
            Some(alert_id)
        }
        _ => belongs,
    };
    if let (Some(d), Some(alert_id)) = (dedup_of(ev), alert_id) {
        for g in &d.groups {
            tx.join_group(g, &ev.id, alert_id, now).await?;
        }
    }
    Ok(alert_id)
}

/// Enqueues `refresh` (card refreshes, owned by `owner`) for alert `alert_id`'s cards. Only a card that exists (or
/// will) can be refreshed; a dead one stays dead. One pending refresh per lane is enough: it renders whatever the
/// alert looks like when it is sent. Ingest's follow-ups and an action run's card refreshes both come here.
pub(crate) async fn refresh_cards(
    tx: &mut dyn IngestTx,
    alert_id: i64,
    owner: &str,
    refresh: &[NewOutboxItem],
    now: i64,
    touched: &mut TouchedLanes,
) -> Result<(), StoreError> {
    for item in refresh {
        let Some((post_id, None)) = tx.alert_post(alert_id, &item.lane).await? else {
            continue;
        };
        if tx.refresh_pending(alert_id, &item.lane).await? {
            continue;
        }
        let id = tx
            .insert_item(&ItemRow {
                event_id: owner,
                item,
                args: to_json("outbox args", &item.args)?,
                ref_item_id: Some(post_id),
                created_at_ms: now,
                dead_reason: None,
            })
            .await?;
        tx.set_refresh(alert_id, &item.lane, id).await?;
        let head = touched.entry(item.lane.clone()).or_insert(id);
        *head = (*head).min(id);
    }
    Ok(())
}

/// The dead reason of an update whose post died.
pub(crate) fn ref_dead_reason(post_id: i64, post_reason: &str) -> String {
    format!("referenced post (outbox item {post_id}) is dead: {post_reason}")
}

/// [`IngestTx`] on any backend's transaction: the statements of [`crate::sql::alerts`], [`crate::sql::outbox`] and
/// [`crate::sql::groups`], run through [`Conn`].
pub(crate) struct SqlIngest<'c> {
    pub c: &'c mut dyn Conn,
}

/// An alert row as [`alerts::OPEN_ALERT`] selects it, and its close.
fn alert_row(r: &Row) -> Result<(Alert, Option<i64>), StoreError> {
    let alert = Alert {
        id: r.get(0)?,
        first_event_id: r.get(1)?,
        count: r.get(2)?,
        last_seen_ms: r.get(3)?,
        started_at_ms: r.get(4)?,
    };
    Ok((alert, r.get(5)?))
}

/// The event standing for the alert `event_id` belongs to (see [`alert_root`]), or `None` for an unknown event.
pub(crate) async fn root_of(
    c: &mut dyn Conn,
    event_id: &str,
) -> Result<Option<String>, StoreError> {
    let Some(r) = c.opt(&outbox::EVENT_FATE, args![event_id]).await? else {
        return Ok(None);
    };
    let fate: String = r.get(0)?;
    Ok(Some(alert_root(event_id, &parse_fate(&fate)?).to_string()))
}

/// An insert of an event whose id is taken is a conflict that names it.
pub(crate) fn event_exists(id: &str) -> impl FnOnce(StoreError) -> StoreError + '_ {
    move |e| match e {
        StoreError::Conflict(_) => StoreError::Conflict(format!("event {id} already exists")),
        other => other,
    }
}

#[async_trait::async_trait]
impl IngestTx for SqlIngest<'_> {
    async fn open_alert(&mut self, key: &str) -> Result<Option<Alert>, StoreError> {
        let row = self.c.opt(&alerts::OPEN_ALERT, args![key]).await?;
        Ok(row.as_ref().map(alert_row).transpose()?.map(|(a, _)| a))
    }

    async fn last_closed_alert(&mut self, key: &str) -> Result<Option<(Alert, i64)>, StoreError> {
        let row = self.c.opt(&alerts::LAST_CLOSED_ALERT, args![key]).await?;
        match row.as_ref().map(alert_row).transpose()? {
            Some((a, Some(closed_at_ms))) => Ok(Some((a, closed_at_ms))),
            _ => Ok(None),
        }
    }

    async fn close_alert(
        &mut self,
        alert_id: i64,
        at_ms: i64,
        ended_at_ms: Option<i64>,
        by: Option<&str>,
    ) -> Result<(), StoreError> {
        self.c
            .exec(
                &alerts::CLOSE_ALERT,
                args![at_ms, alert_id, ended_at_ms, by],
            )
            .await?;
        self.c.exec(&alerts::DROP_KEYS, args![alert_id]).await?;
        Ok(())
    }

    async fn update_alert(
        &mut self,
        alert_id: i64,
        count: i64,
        last_seen_ms: i64,
        started_at_ms: Option<i64>,
        event_id: &str,
    ) -> Result<(), StoreError> {
        self.c
            .exec(
                &alerts::UPDATE_ALERT,
                args![count, last_seen_ms, alert_id, started_at_ms, event_id],
            )
            .await?;
        Ok(())
    }

    async fn create_alert(
        &mut self,
        key: &str,
        first_event_id: &str,
        at_ms: i64,
        started_at_ms: Option<i64>,
    ) -> Result<i64, StoreError> {
        self.c
            .one(
                &alerts::CREATE_ALERT,
                args![key, first_event_id, at_ms, started_at_ms],
            )
            .await?
            .get(0)
    }

    async fn born_closed(&mut self, alert_id: i64, at_ms: i64) -> Result<(), StoreError> {
        self.c
            .exec(&alerts::BORN_CLOSED, args![alert_id, at_ms])
            .await?;
        Ok(())
    }

    async fn alert_post(
        &mut self,
        alert_id: i64,
        lane: &str,
    ) -> Result<Option<(i64, Option<String>)>, StoreError> {
        let Some(r) = self
            .c
            .opt(&alerts::ALERT_POST, args![alert_id, lane])
            .await?
        else {
            return Ok(None);
        };
        let state: Option<String> = r.get(1)?;
        let dead = match state.as_deref() {
            Some("dead") => Some(r.get::<Option<String>>(2)?.unwrap_or_default()),
            _ => None,
        };
        Ok(Some((r.get(0)?, dead)))
    }

    async fn add_alert_post(
        &mut self,
        alert_id: i64,
        lane: &str,
        item_id: i64,
    ) -> Result<(), StoreError> {
        self.c
            .exec(&alerts::ADD_ALERT_POST, args![alert_id, lane, item_id])
            .await?;
        Ok(())
    }

    async fn refresh_pending(&mut self, alert_id: i64, lane: &str) -> Result<bool, StoreError> {
        Ok(self
            .c
            .opt(&alerts::REFRESH_PENDING, args![alert_id, lane])
            .await?
            .is_some())
    }

    async fn set_refresh(
        &mut self,
        alert_id: i64,
        lane: &str,
        item_id: i64,
    ) -> Result<(), StoreError> {
        self.c
            .exec(&alerts::SET_REFRESH, args![item_id, alert_id, lane])
            .await?;
        Ok(())
    }

    async fn alert_of(&mut self, event_id: &str) -> Result<Option<i64>, StoreError> {
        let Some(root) = root_of(&mut *self.c, event_id).await? else {
            return Ok(None);
        };
        self.c
            .opt(&alerts::ALERT_OF, args![&root])
            .await?
            .map(|r| r.get(0))
            .transpose()
    }

    async fn insert_event(&mut self, row: &EventRow<'_>) -> Result<(), StoreError> {
        self.c
            .exec(
                &outbox::INSERT_EVENT,
                &[
                    row.id.into(),
                    row.received_at_ms.into(),
                    row.source.into(),
                    Arg::Json(row.body),
                    Arg::Json(&row.fate),
                ],
            )
            .await
            .map_err(event_exists(row.id))?;
        Ok(())
    }

    async fn join_group(
        &mut self,
        g: &GroupJoin,
        first_event_id: &str,
        alert_id: i64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let labels = to_json("group labels", &g.labels)?;
        let group_id: i64 = self
            .c
            .one(
                &groups::JOIN_GROUP,
                args![
                    &g.key,
                    &g.rule,
                    &g.lane,
                    &g.team,
                    &g.channel,
                    &g.template,
                    &labels,
                    first_event_id,
                    g.wait_ms,
                    g.interval_ms,
                    g.repeat_ms,
                    now_ms
                ],
            )
            .await?
            .get(0)?;
        self.c
            .exec(&groups::ADD_MEMBER, args![group_id, alert_id])
            .await?;
        self.c
            .exec(
                &groups::COUNT_ROUTE_EVENT,
                args![&g.rule, now_ms - now_ms.rem_euclid(1000)],
            )
            .await?;
        Ok(())
    }

    async fn group_of(&mut self, group_id: i64) -> Result<Option<(String, String)>, StoreError> {
        self.c
            .opt(&groups::GROUP_OF, args![group_id])
            .await?
            .map(|r| Ok((r.get(0)?, r.get(1)?)))
            .transpose()
    }

    async fn group_post(
        &mut self,
        group_id: i64,
    ) -> Result<Option<(i64, Option<String>)>, StoreError> {
        self.c
            .opt(&groups::GROUP_POST, args![group_id])
            .await?
            .map(|r| Ok((r.get(0)?, r.get(1)?)))
            .transpose()
    }

    async fn finish_flush(
        &mut self,
        f: &GroupFlush,
        post_id: Option<i64>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.c
            .exec(
                &groups::FINISH_FLUSH,
                args![
                    f.group_id,
                    f.version,
                    now_ms,
                    f.notified_firing,
                    f.next_due_ms,
                    i64::from(f.digested),
                    post_id
                ],
            )
            .await?;
        Ok(())
    }

    async fn insert_item(&mut self, row: &ItemRow<'_>) -> Result<i64, StoreError> {
        let (state, dead_at) = match row.dead_reason {
            Some(_) => ("dead", Some(row.created_at_ms)),
            None => ("pending", None),
        };
        self.c
            .one(
                &outbox::INSERT_ITEM,
                &[
                    row.event_id.into(),
                    (&row.item.lane).into(),
                    (&row.item.team).into(),
                    (&row.item.channel).into(),
                    (&row.item.method).into(),
                    Arg::Json(&row.args),
                    row.item.ref_post.into(),
                    row.ref_item_id.into(),
                    state.into(),
                    row.created_at_ms.into(),
                    (&row.dead_reason).into(),
                    dead_at.into(),
                ],
            )
            .await?
            .get(0)
    }

    async fn key_held(
        &mut self,
        key: &InhibitKey,
        own: Option<&str>,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        self.c
            .one(
                &alerts::KEY_HELD,
                args![&key.key, now_ms, own, key.both_sides],
            )
            .await?
            .get(0)
    }

    async fn hold_keys(
        &mut self,
        alert_id: i64,
        keys: &[InhibitKey],
        window_ms: i64,
    ) -> Result<(), StoreError> {
        for chunk in crate::sql::shaped(keys, 64) {
            let sql = format!(
                "{}{}{}",
                alerts::HOLD_KEYS,
                values_list(chunk.len(), 4, 1),
                alerts::HOLD_KEYS_END
            );
            let args: Vec<Arg<'_>> = chunk
                .iter()
                .flat_map(|k| {
                    [
                        Arg::from(&k.key),
                        alert_id.into(),
                        k.both_sides.into(),
                        window_ms.into(),
                    ]
                })
                .collect();
            self.c.exec(&sql, &args).await?;
        }
        Ok(())
    }
}
