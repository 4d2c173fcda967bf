//! Routing: from "this alert fired" to "these people are told, once, in a
//! message that groups it with its neighbours" — Alertmanager's model.
//!
//! phase0 prints every alert at every check: one hot host for an hour is
//! 360 pages, and a rack failing is a hundred separate pages in one
//! second. Routing removes both: the state machine already pages once per
//! transition; here alerts are *grouped* (one message per group, not per
//! alert), *timed* (`group_wait` to gather a burst, `group_interval`
//! between updates, `repeat_interval` for reminders), *routed* (a tree of
//! label matchers picks the receiver) and *silenced* (`silence.rs`). The
//! file that configures it all is `config.rs`, beside this folder.
//!
//! # Layout
//!
//!
//! - `route.rs`: the route tree and how an alert walks it (`continue`);
//! - `group.rs`: alert groups, and the decision at each flush;
//! - `inhibit.rs`: `inhibit_rules`, firing alerts muting their symptoms;
//! - `dispatcher.rs`: the [`Dispatcher`], which hears the engine's
//!   transitions, keeps the groups, and flushes them into the outbox on
//!   its own thread.
//!
//! Docs chapter 5, "Routing" and "Grouping".

pub mod dispatcher;
pub mod group;
pub mod inhibit;
pub mod route;

pub use dispatcher::{Dispatcher, GroupSnapshot, TickReport};
pub use route::{GroupBy, RouteNode, RouteTree};
