//! Buffer sizes shared by the plain-WebSocket front ends (Pusher, Supabase Realtime, raw JSON).

/// Bytes read from the socket at a time: small, because every idle connection holds this much
/// (docs/performance.md, "Pusher protocol": 142 KB per idle connection with tungstenite's
/// default of 128 KiB). Client frames are small; a larger one is read in several steps.
pub const READ_BUFFER: usize = 1024;
