//! The page at `/` ([`PAGE`]): the simulated workspace as a person sees it during `sluice demo`, drawn like Slack.
//! The HTML is rendered on the server ([`render::render`], with [`crate::mrkdwn`]) for one viewer (channel, "who am
//! I", time zone) and pushed to the page over server-sent events (`GET /sim/stream`) whenever the workspace
//! changes; `GET /sim/render` answers the same JSON once. The page's script only swaps the pieces in and sends what
//! the person does to `/sim/user/*` (clicks, reactions, slash commands, messages, modal submissions), which reach
//! the app exactly as Slack would send them ([`crate::inbound`]).
//!
//! The assets are embedded in the binary (no external requests, no build step). A stream ends when the server is
//! shutting down ([`Stopping`]), so [`crate::RunningSim::stopped`] never waits on an open page.

pub mod render;

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State as AxState};
use axum::http::Extensions;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::{Json, Router};
use futures::Stream;
use tokio::sync::watch;

use crate::Simulator;
pub use render::Look;

pub const PAGE: &str = concat!(
    include_str!("page.html"),
    "<style>\n",
    include_str!("page.css"),
    "</style>\n<script>\n",
    include_str!("page.js"),
    "</script>\n</body>\n</html>\n"
);

/// Set on the router by [`Simulator::serve`]: becomes `true` when the server starts shutting down.
#[derive(Clone, Debug)]
pub struct Stopping(pub watch::Receiver<bool>);

/// How often a stream looks again when nothing said the workspace changed (the clock moves: scheduled messages,
/// "3 minutes ago").
const IDLE_RECHECK: Duration = Duration::from_secs(1);

pub(crate) fn routes() -> Router<Simulator> {
    Router::new()
        .route("/", get(page))
        .route("/sim/render", get(render_once))
        .route("/sim/stream", get(stream))
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

async fn render_once(
    AxState(sim): AxState<Simulator>,
    Query(look): Query<Look>,
) -> impl IntoResponse {
    let state = sim.lock();
    Json(render::render(&state, &look))
}

async fn stream(
    AxState(sim): AxState<Simulator>,
    Query(look): Query<Look>,
    ext: Extensions,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stopping = ext.get::<Stopping>().map(|s| s.0.clone());
    Sse::new(views(sim, look, stopping)).keep_alive(KeepAlive::default())
}

/// The rendered view each time it differs from the last one sent; ends when the server stops.
fn views(
    sim: Simulator,
    look: Look,
    stopping: Option<watch::Receiver<bool>>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let changes = sim.changes.subscribe();
    futures::stream::unfold(
        (sim, look, stopping, changes, String::new()),
        |(sim, look, mut stopping, mut changes, last)| async move {
            loop {
                if stopping.as_ref().is_some_and(|s| *s.borrow()) {
                    return None;
                }
                let now = {
                    let state = sim.lock();
                    render::render(&state, &look).to_string()
                };
                if now != last {
                    let event = Event::default().event("view").data(now.clone());
                    return Some((Ok(event), (sim, look, stopping, changes, now)));
                }
                let stop = async {
                    match stopping.as_mut() {
                        Some(s) => {
                            let _ = s.wait_for(|v| *v).await;
                        }
                        None => std::future::pending::<()>().await,
                    }
                };
                tokio::select! {
                    _ = stop => return None,
                    _ = changes.changed() => {}
                    _ = tokio::time::sleep(IDLE_RECHECK) => {}
                }
            }
        },
    )
}
