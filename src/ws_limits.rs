//! Buffer sizes shared by the plain-WebSocket front ends (Pusher, Supabase Realtime, raw JSON).

/// Bytes read from the socket at a time: small, because it is held by every idle connection.
/// (docs/performance.md, "Pusher protocol": 142 KB per idle connection with tungstenite's
/// default of 128 KiB.)
pub const READ_BUFFER: usize = 4 * 1024;
