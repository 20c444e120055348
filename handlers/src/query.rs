//! `query:*` events. Empty until its feature issue lands; the dispatcher answers its events as
//! unknown until then.
