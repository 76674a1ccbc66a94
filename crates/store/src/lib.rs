//! Metadata persistence behind a trait: embedded SQLite (WAL) with versioned migrations
