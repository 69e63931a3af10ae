//! Cross-module tests: workflow snapshots, property tests over pseudo-random compositions, and validation error cases.
