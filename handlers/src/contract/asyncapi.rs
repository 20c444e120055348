//! The AsyncAPI 3 document of the Socket.IO surface: generated later in this file.
