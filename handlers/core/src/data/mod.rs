//! Live data: project collections of JSON documents, their access rules, the changes they go
//! through and the per-connection subscriptions (collection, document, live query) that receive
//! those changes.
//!
//! Delivery is node-local by design: every node learns of every change (from a MongoDB change
//! stream each node consumes, or from the cluster bus when a node publishes its own writes) and
//! delivers it only to its own connections, so each socket gets each change once, however many
//! nodes there are and however many of its subscriptions match.

pub mod change;
pub mod documents;
pub mod live;
pub mod rules;
pub mod subscriptions;
