//! The server's load test (being written).
fn main() {}
