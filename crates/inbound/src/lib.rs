//! Requests from Slack (being built).
