//! Names of the events the server emits, in one place.

pub const ERROR: &str = "error";
pub const CUSTOM_EVENT: &str = "custom:event";

pub const INTEGRATION_ERROR: &str = "integration:error";
pub const SUBSCRIBED: &str = "subscribed";
pub const UNSUBSCRIBED: &str = "unsubscribed";
