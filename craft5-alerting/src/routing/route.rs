//! The route tree: which receivers an alert goes to, and how its
//! notifications are grouped and timed — Alertmanager's `route:`.
//!
//! An alert enters at the root (which matches everything) and walks down:
//! at each node the children are tried in order; the first child whose
//! matchers all match takes the alert (and its own children are tried),
//! and the walk stops there unless that child says `continue: true`, in
//! which case the next siblings are tried too. A node none of whose
//! children took the alert is where it lands. So one alert can land on
//! several nodes (with `continue`), and always lands somewhere (at worst,
//! the root: the default route).
//!
//! Settings a node leaves out are its parent's (receiver, `group_by`, the
//! three timers, `send_resolved_when_silenced`,
//! `send_resolved_when_acknowledged`, `escalation_policy`,
//! `fallback_receiver`). The
//! tree is kept flat (`Vec<RouteNode>`, children by index) so a group can
//! name its node with a number. Docs chapter 5, "Routing".

use common::Labels;

use crate::matcher::{Matcher, format_matchers, matches_all};

/// How alerts of one node are split into groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupBy {
    /// By the values of these labels (none: the whole node is one group).
    Labels(Vec<String>),
    /// By every label (`group_by: ['...']`): one alert, one group.
    All,
}

impl GroupBy {
    /// The group's labels for an alert's labels.
    pub fn group_labels(&self, labels: &Labels) -> Labels {
        match self {
            GroupBy::All => labels.clone(),
            GroupBy::Labels(names) => Labels::from_pairs(
                labels
                    .iter()
                    .filter(|(name, _)| names.iter().any(|n| n == name)),
            ),
        }
    }
}

/// One node of the tree, with its inherited settings resolved.
#[derive(Debug, Clone)]
pub struct RouteNode {
    /// Where it is in the config file: `route`, `route.routes[1]`, …
    pub path: String,
    /// Alertmanager's route key: the matchers from the root down,
    /// `{}/{severity="page"}`; it starts every group key of this node.
    pub key: String,
    /// The receiver its groups notify.
    pub receiver: String,
    /// Its own matchers (the root has none).
    pub matchers: Vec<Matcher>,
    /// How its alerts are grouped.
    pub group_by: GroupBy,
    /// How long a new group waits for more alerts before its first
    /// notification.
    pub group_wait_ms: i64,
    /// How long after a notification the group is looked at again (new
    /// alerts, resolved alerts).
    pub group_interval_ms: i64,
    /// How long after a notification an unchanged firing group is sent
    /// again.
    pub repeat_interval_ms: i64,
    /// Keep trying the next siblings after this node matched.
    pub continue_matching: bool,
    /// Send the resolution of an alert that was notified as firing even
    /// when a silence now covers it (default false, as in Alertmanager).
    pub send_resolved_when_silenced: bool,
    /// Send the resolution of an acknowledged alert (default true).
    pub send_resolved_when_acknowledged: bool,
    /// The escalation policy its alerts follow (`escalation.rs`).
    pub escalation_policy: Option<String>,
    /// Where notifications go, too, when the receiver keeps failing.
    pub fallback_receiver: Option<String>,
    /// Its children, as indexes into the tree.
    pub children: Vec<usize>,
}

/// The whole tree; node 0 is the root.
#[derive(Debug, Clone)]
pub struct RouteTree {
    nodes: Vec<RouteNode>,
}

impl RouteTree {
    /// A tree of `nodes`, root first, children by index (built by the
    /// config loader, which always has a root; an empty tree matches
    /// nothing).
    pub(crate) fn new(nodes: Vec<RouteNode>) -> Self {
        RouteTree { nodes }
    }

    /// Every node, root first.
    pub fn nodes(&self) -> &[RouteNode] {
        &self.nodes
    }

    /// One node.
    pub fn node(&self, index: usize) -> Option<&RouteNode> {
        self.nodes.get(index)
    }

    /// The nodes an alert with `labels` lands on, in tree order.
    pub fn matching(&self, labels: &Labels) -> Vec<usize> {
        let mut found = Vec::new();
        if !self.nodes.is_empty() {
            self.walk(0, labels, &mut found);
        }
        found
    }

    fn walk(&self, index: usize, labels: &Labels, found: &mut Vec<usize>) -> bool {
        let Some(node) = self.nodes.get(index) else {
            return false;
        };
        if !matches_all(&node.matchers, labels) {
            return false;
        }
        let before = found.len();
        for &child in &node.children {
            let matched = self.walk(child, labels, found);
            if matched && !self.nodes.get(child).is_some_and(|c| c.continue_matching) {
                break;
            }
        }
        if found.len() == before {
            found.push(index);
        }
        true
    }
}

/// A child's key: the parent's, `/`, its matchers.
pub(crate) fn child_key(parent: &str, matchers: &[Matcher]) -> String {
    format!("{parent}/{}", format_matchers(matchers))
}
