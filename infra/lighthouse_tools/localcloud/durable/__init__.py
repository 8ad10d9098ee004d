"""The embedded cloud's state on disk: a write-ahead journal with group commit, compacted snapshots,
a versioned data directory with a lock, and recovery of the waits that were running."""
